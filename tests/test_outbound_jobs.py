"""Callback jobs: made once from the CDR outbox (queue callback offer / exit key, voicemail, the
bot's registration), from a ticket or by hand; taken, skipped, closed; every attempt written to
the job, the ticket's history and an outbound CDR linked to the original call."""
import pytest

from engine.outbound import attempts, jobs
from engine.outbound.campaigns import OutboundError
from engine.outbound.feed import JobFeed, jobs_for_cdr
from engine.tickets.consumer import Consumer
from tests.outboundfix import claims_for, outbound_db
from tests.ticketfix import Clock, cdr, cdr_store, db_url, ticket_store


def test_rules():
    assert jobs_for_cdr(cdr(tags=["callback"], queue="pension", extra={"callback_number": "13900139000"})) == [
        {"number": "13900139000", "reason": "queue_callback", "queue": "pension",
         "note": "来电人在排队时要求回拨（来电 13800138000）"}]
    bot = jobs_for_cdr(cdr(tags=["callback"], extra={"callback_number": "13900139000", "callback_source": "bot"}))
    assert [j["reason"] for j in bot] == ["bot"]
    assert jobs_for_cdr(cdr(tags=["wanted_agent"], queue="pension")) == []
    assert jobs_for_cdr(cdr(tags=["callback"], extra={"direction": "outbound"})) == []
    assert jobs_for_cdr(cdr(tags=["voicemail:general"], extra={"voicemail_path": "/nonexistent.wav"})) == []


def test_outbox_makes_each_job_once_beside_the_ticket(tmp_path):
    clock = Clock()
    cdrs = cdr_store(tmp_path)
    vm = tmp_path / "vm.wav"
    vm.write_bytes(b"RIFF" + b"\0" * 2000)
    queued = cdr(tags=["callback"], queue="pension", extra={"callback_number": "13900139000"})
    voicemail = cdr(tags=["voicemail:general"], extra={"voicemail_path": str(vm)})
    for record in (queued, voicemail, cdr(tags=[]), queued):           # the last: a replay
        assert cdrs.write(record)
    db = outbound_db(tmp_path, clock)
    feed = JobFeed(db, deadline_hours=2)
    made = feed.run_once()
    assert sorted((j["reason"], j["number"]) for j in made) == [("queue_callback", "13900139000"),
                                                                ("voicemail", "13800138000")]
    assert feed.run_once() == []
    Consumer(db_url(tmp_path), store=ticket_store(tmp_path, clock)).drain()     # the tickets too
    again = JobFeed(outbound_db(tmp_path, clock)).run_once()
    assert again == []
    job = [j for j in jobs.list_jobs(db) if j["reason"] == "queue_callback"][0]
    assert job["call_uuid"] == queued["uuid"] and job["queue"] == "pension"
    assert (job["deadline_at"] - job["due_at"]).total_seconds() == 2 * 3600
    cdrs.close()


def test_take_skip_done_and_attempts_everywhere(tmp_path, redis_server, redis_prefix):
    clock = Clock()
    cdrs = cdr_store(tmp_path)
    original = cdr(tags=["callback"], queue="pension", extra={"callback_number": "13900139000"})
    cdrs.write(original)
    Consumer(db_url(tmp_path), store=ticket_store(tmp_path, clock)).drain()
    db = outbound_db(tmp_path, clock)
    [job] = JobFeed(db).run_once()
    claims = claims_for(db, redis_server, redis_prefix, "engine-a")
    other = claims_for(outbound_db(tmp_path, clock), redis_server, redis_prefix, "engine-b")
    assert jobs.skip(db, job["id"], "1002")["skipped_by"] == ["1002"]
    assert [j["id"] for j in jobs.list_jobs(db, state="pending", agent="1002")] == []
    taken = jobs.take(db, claims, job["id"], "1001")
    assert taken["state"] == "claimed" and taken["agent"] == "1001"
    with pytest.raises(OutboundError, match="claimed"):
        jobs.take(db, other, job["id"], "1003")
    attempt = attempts.begin(db, "job", taken, agent="1001", engine="engine-a")
    clock.advance(seconds=40)
    state = attempts.finish(db, claims, "job", taken, attempt, "no_answer", cause="NO_ANSWER",
                            call_uuid="out-leg-1", agent="1001", cdr_writer=cdrs.write)
    assert state == "pending"
    after = jobs.get_job(db, job["id"])
    assert after["attempts"] == 1 and after["last_result"] == "no_answer"
    assert (after["due_at"] - clock()).total_seconds() == 60 * 60     # the dialler's default no_answer rule
    out = cdrs.get("out-leg-1")
    assert out["extra"]["direction"] == "outbound" and out["extra"]["original_call"] == original["uuid"]
    assert out["destination"] == "13900139000" and out["hangup_cause"] == "NO_ANSWER"
    tickets = ticket_store(tmp_path, clock)
    [ticket] = tickets.list()
    assert any(h["action"] == "callback" and "no_answer" in h["note"] for h in tickets.history(ticket["id"]))
    # the outbound CDR makes no ticket and no job of its own
    Consumer(db_url(tmp_path), store=tickets).drain()
    assert len(tickets.list()) == 1 and JobFeed(db).run_once() == []
    # the second try reaches the caller
    taken = jobs.take(db, claims, job["id"], "1001")
    attempt = attempts.begin(db, "job", taken, agent="1001")
    assert attempts.finish(db, claims, "job", taken, attempt, "answered", call_uuid="out-leg-2",
                           answered_at=clock(), agent="1001", cdr_writer=cdrs.write) == "done"
    assert [a["result"] for a in attempts.attempts_of(db, "job", job["id"])] == ["no_answer", "answered"]
    assert not claims.redis.exists(claims.key("job", job["id"]))
    cdrs.close()


def test_manual_and_ticket_jobs(tmp_path, redis_server, redis_prefix):
    clock = Clock()
    db = outbound_db(tmp_path, clock)
    with pytest.raises(OutboundError, match="cannot call back"):
        jobs.create_job(db, "13800\n138000; rm", "manual")
    job = jobs.create_job(db, "13800138000", "manual", note="市民要求下午回电", who="sup1", skills=["pension"])
    assert jobs.list_jobs(db, skills={"pension", "medical"})[0]["id"] == job["id"]
    assert jobs.list_jobs(db, skills={"medical"}) == []
    tickets = ticket_store(tmp_path, clock)
    t = tickets.create(kind="agent", category="consultation", summary="养老金查询", who="1001")
    with pytest.raises(OutboundError, match="no caller number"):
        jobs.from_ticket(db, tickets, t["id"])
    claims = claims_for(db, redis_server, redis_prefix, "engine-a")
    done = jobs.done(db, claims, job["id"], "1001", disposition="reached_by_sms")
    assert done["state"] == "done" and "reached_by_sms" in done["note"]
    with pytest.raises(OutboundError, match="done already"):
        jobs.done(db, claims, job["id"], "1001")


def test_old_calls_make_no_job(tmp_path):
    clock = Clock()
    cdrs = cdr_store(tmp_path)
    cdrs.write(cdr(tags=["callback"], extra={"callback_number": "13900139000"}))     # ends 02:03 UTC
    clock.advance(hours=30)
    assert JobFeed(outbound_db(tmp_path, clock)).run_once() == []
    cdrs.close()


def test_feed_passes_keep_no_new_model_classes(tmp_path):
    """The feed polls every 2 s for the life of the engine: a pass that bound the ticket and outbox
    models anew kept ~12 KiB of classes for good (the bound OutboxAck's foreign key lands in the
    shared Outbox's backrefs), 500 MiB a day."""
    from engine.cdr.models import Outbox
    from engine.tickets.models import bound_models
    cdrs = cdr_store(tmp_path)
    cdrs.write(cdr(tags=["callback"], extra={"callback_number": "13900139000"}))
    db = outbound_db(tmp_path, Clock())
    feed = JobFeed(db, deadline_hours=2)
    assert len(feed.run_once()) == 1
    kept = len(Outbox._meta.backrefs)
    for _ in range(5):
        assert feed.run_once() == []
    assert len(Outbox._meta.backrefs) == kept
    assert bound_models(db.db) is bound_models(db.db)
    cdrs.close()
