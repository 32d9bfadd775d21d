"""The dialer over the simulated trunk: each refusal, the switch's causes -> results and retries,
early media, the socket hand-over to the engine. A real simulator over TCP; the lists in SQLite."""
import datetime
import time

import pytest

from engine.outbound.dialer import DialRequest, Dialer
from engine.outbound.lists import NumberLists
from engine.settings import default_settings
from engine.sim.pstn import Behaviour, Population
from tests.simfix import wait_for

# a Tuesday at 10:00 in Shanghai: inside the default window
OPEN = datetime.datetime(2026, 12, 8, 2, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def lists(tmp_path):
    store = NumberLists(f"sqlite:///{tmp_path / 'lists.db'}").open()
    yield store
    store.close()


def make_dialer(conn, lists=None, gate=None, clock=OPEN, **cfg):
    settings = default_settings(outbound_calls={"originate_timeout": 5, **cfg})
    return Dialer(settings, conn, lists=lists, gate=gate, clock=lambda: clock)


def population(switch, **numbers):
    pop = switch.population = Population()
    for number, behaviour in numbers.items():
        pop.add(number.lstrip("n"), behaviour)
    return pop


def test_answered_leg_is_parked_and_returned(switch, conn):
    population(switch, n13800138000=Behaviour("person", ring=0.1))
    outcome = make_dialer(conn).dial(DialRequest("+86 138-0013-8000", purpose="manual", target="park"))
    assert outcome.answered and outcome.result == "answered" and outcome.counts_attempt
    leg = switch.channels[outcome.uuid]
    assert wait_for(lambda: leg.parked) is None
    assert leg.variables["hotline_purpose"] == "manual"
    assert leg.name.startswith("sofia/external/13800138000")


@pytest.mark.parametrize("behaviour, cause, result, retry, counts", [
    (Behaviour("busy"), "USER_BUSY", "busy", True, True),
    (Behaviour("busy_ringing", ring=0.3), "USER_BUSY", "busy", True, True),
    (Behaviour("no_answer"), "NO_ANSWER", "no_answer", True, True),
    (Behaviour("rejected"), "CALL_REJECTED", "rejected", True, True),
    (Behaviour("unallocated", ring=0.3), "UNALLOCATED_NUMBER", "invalid", False, True),
    (Behaviour("switched_off", ring=0.3), "NO_USER_RESPONSE", "no_answer", True, True),
    (Behaviour("temp_failure"), "NORMAL_TEMPORARY_FAILURE", "our_fault", True, False),
    (Behaviour("gateway_down"), "GATEWAY_DOWN", "our_fault", True, False),
], ids=lambda v: getattr(v, "kind", None) or str(v))
def test_the_switchs_causes_make_the_results(switch, conn, behaviour, cause, result, retry, counts):
    population(switch, n13912345678=behaviour)
    outcome = make_dialer(conn).dial(DialRequest("13912345678", purpose="callback", timeout=1))
    assert (outcome.answered, outcome.hangup_cause, outcome.result) == (False, cause, result)
    assert (outcome.retry, outcome.counts_attempt) == (retry, counts)
    assert outcome.reason == f"-ERR {cause}"          # the originate's own reply form


def test_early_media_announcement_is_not_an_answer(switch, conn):
    """The carrier plays "the number you dialled does not exist" as early media, then 404. An
    originate without ignore_early_media=true takes the early media for success (the switch's
    early_ok), the dialer's never does."""
    population(switch, n13912345678=Behaviour("unallocated", ring=1.0))
    plain = conn.api("originate sofia/gateway/trunk/13912345678 &park()")
    assert plain.startswith("+OK ")                  # what a naive dialer would count as answered
    outcome = make_dialer(conn).dial(DialRequest("13912345678", purpose="campaign", campaign="c", timeout=3))
    assert not outcome.answered and outcome.result == "invalid" and not outcome.retry


def test_refusals_each_have_their_reason(switch, conn, lists):
    pop = population(switch, n13800138000=Behaviour("person"))
    lists.add("dnc", "13800138000", reason="asked")
    lists.add("block", "0755*", reason="no calls to Shenzhen")
    lists.reload()
    dialer = make_dialer(conn, lists=lists)
    invalid = dialer.dial(DialRequest("12345678901234", purpose="callback"))
    assert invalid.result == "invalid" and invalid.refused and not invalid.retry
    assert "neither a mobile" in invalid.reason or "11 digits" in invalid.reason
    assert dialer.dial(DialRequest("110", purpose="manual")).result == "blocked"
    assert dialer.dial(DialRequest("0755-12345678", purpose="manual")).result == "blocked"
    dnc = dialer.dial(DialRequest("13800138000", purpose="campaign", campaign="x"))
    assert dnc.result == "dnc" and not dnc.retry
    # DNC is for campaigns and callbacks: an agent's manual dial still goes through
    assert dialer.dial(DialRequest("13800138000", purpose="manual", target="park")).answered
    assert pop.phones["13800138000"].calls and len(pop.phones["13800138000"].calls) == 1


def test_window_closed_refuses_and_says_when_it_opens(switch, conn):
    population(switch, n13800138000=Behaviour("person"))
    saturday = datetime.datetime(2026, 12, 12, 2, 0, tzinfo=datetime.timezone.utc)
    dialer = make_dialer(conn, clock=saturday)
    out = dialer.dial(DialRequest("13800138000", purpose="campaign", campaign="c"))
    assert out.result == "window_closed" and out.retry and not out.counts_attempt
    assert out.not_before.isoformat() == "2026-12-14T09:00:00+08:00"
    assert dialer.next_due(out, 0) == out.not_before
    assert switch.population.phones == {}            # nothing was dialled


def test_transfer_may_reach_emergency_numbers_only_when_allowed(switch, conn):
    population(switch, n110=Behaviour("person"))
    assert make_dialer(conn).dial(DialRequest("110", purpose="transfer", target="park")).result == "blocked"
    allowed = make_dialer(conn, dial_block={"transfer_allow": ["110"]})
    assert allowed.dial(DialRequest("110", purpose="transfer", target="park")).answered
    assert allowed.dial(DialRequest("110", purpose="campaign", target="park")).result == "blocked"


def test_no_campaign_call_on_a_holiday_but_on_the_make_up_saturday(switch, conn):
    pop = population(switch, n13800138000=Behaviour("person"))
    holiday = datetime.datetime(2026, 10, 1, 2, 0, tzinfo=datetime.timezone.utc)     # Thu 10:00, National Day
    out = make_dialer(conn, clock=holiday).dial(DialRequest("13800138000", purpose="campaign", campaign="c",
                                                            target="park"))
    assert out.result == "window_closed" and out.not_before.isoformat() == "2026-10-08T09:00:00+08:00"
    assert pop.phones == {}
    makeup = datetime.datetime(2026, 10, 10, 2, 0, tzinfo=datetime.timezone.utc)     # Sat 10:00, 调休
    assert make_dialer(conn, clock=makeup).dial(DialRequest("13800138000", purpose="campaign", campaign="c",
                                                            target="park")).answered
    # a campaign's own window (settings) is used for its dials
    evening = make_dialer(conn, clock=makeup, campaigns={"c": {"window": {"days": ["sat"], "hours": ["18:00-20:00"],
                                                                          "cn_calendar": False}}})
    late = evening.dial(DialRequest("13800138000", purpose="campaign", campaign="c", target="park"))
    assert late.result == "window_closed" and late.not_before.isoformat() == "2026-10-10T18:00:00+08:00"


def test_new_dials_pause_while_inbound_callers_wait(switch, conn, redis_server, redis_prefix):
    from engine.acd.store import AcdStore
    from engine.outbound.gate import Gate
    store = AcdStore(redis_server.url, prefix=redis_prefix)
    try:
        pop = population(switch, n13800138000=Behaviour("person"))
        settings_cfg = {"pause_inbound_wait": 20}
        dialer = make_dialer(conn, **settings_cfg)
        dialer.gate = Gate(store, dialer.cfg)
        store.join("general", "waiting-caller", "e1", "13900000000", joined=time.time() - 60)
        out = dialer.dial(DialRequest("13800138000", purpose="callback", target="park"))
        assert out.result == "paused" and out.retry and not out.counts_attempt and "waited 60 s" in out.reason
        assert pop.phones == {}
        # a transfer is part of an inbound call: never paused
        assert dialer.dial(DialRequest("13800138000", purpose="transfer", target="park")).answered
        store.leave("general", "waiting-caller")
        answered = dialer.dial(DialRequest("13800138000", purpose="callback", target="park"))
        assert answered.answered
        assert store.r.zscore(f"{redis_prefix}ob:legs", answered.uuid) is not None     # counted while up
        switch.channels[answered.uuid].hangup()
        assert wait_for(lambda: store.r.zscore(f"{redis_prefix}ob:legs", answered.uuid) is None) is None
    finally:
        store.flush()


def test_scenario_file_sets_the_population_behind_the_trunk(switch, conn, tmp_path):
    from engine.sim.endpoints import ScenarioRunner
    from engine.sim.scenario import ScenarioError, load_scenario
    path = tmp_path / "s.yaml"
    path.write_text('pstn:\n  - {number: "139*", behaviour: busy_ringing, ring: 0.2}\n'
                    '  - {number: "13900000000", behaviour: person, ring: 0.1, presses: [{after: 0.1, digits: "1"}]}\n',
                    encoding="utf-8")
    ScenarioRunner(switch, load_scenario(path)).start()
    dialer = make_dialer(conn)
    assert dialer.dial(DialRequest("13912345678", purpose="callback")).result == "busy"
    out = dialer.dial(DialRequest("13900000000", purpose="callback", target="park"))
    assert out.answered and wait_for(lambda: "1" in switch.population.phones["13900000000"].pressed) is None
    path.write_text('pstn:\n  - {number: "139x", behaviour: busy}\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"s.yaml:2:6: pstn\[0\].number"):
        load_scenario(path)


def test_a_dial_the_switch_never_reports_on_is_our_fault(switch, conn):
    """The connection to the switch is cut while the number rings: the dial's wait ends (the
    connection's pending jobs fail at once), the result is our fault, retried, not held against
    the contact; the ring goes on at the switch (nobody could ask it to stop)."""
    import gevent
    pop = population(switch, n13800138000=Behaviour("no_answer"))
    dialer = make_dialer(conn)

    def cut():
        for session in list(switch.server.sessions):
            session._abort()
    gevent.spawn_later(0.5, cut)
    started = time.monotonic()
    out = dialer.dial(DialRequest("13800138000", purpose="callback", timeout=30))
    assert time.monotonic() - started < 10
    assert (out.answered, out.result, out.hangup_cause, out.retry, out.counts_attempt) == \
        (False, "our_fault", None, True, False)
    assert out.uuid not in dialer.live and pop.phones["13800138000"].calls[0].uuid == out.uuid


def test_no_dial_that_would_ring_past_the_window(switch, conn):
    pop = population(switch, n13800138000=Behaviour("person"))
    late = datetime.datetime(2026, 12, 8, 11, 59, 40, tzinfo=datetime.timezone.utc)   # Tue 19:59:40
    out = make_dialer(conn, clock=late).dial(DialRequest("13800138000", purpose="callback", timeout=30))
    assert out.result == "window_closed" and "closes at 20:00" in out.reason
    assert out.not_before.isoformat() == "2026-12-09T09:00:00+08:00" and pop.phones == {}
    assert make_dialer(conn, clock=late).dial(DialRequest("13800138000", purpose="callback", timeout=15,
                                                          target="park")).answered


def test_optout_from_another_process_counts_at_once(switch, conn, tmp_path):
    population(switch, n13800138000=Behaviour("person"))
    url = f"sqlite:///{tmp_path / 'lists.db'}"
    ours, theirs = NumberLists(url).open(), NumberLists(url).open()      # two engines, one database
    try:
        ours.reload()
        dialer = make_dialer(conn, lists=ours)
        theirs.add_from_optout("13800138000", "c1")                     # our view is not reloaded
        assert dialer.dial(DialRequest("13800138000", purpose="campaign", campaign="c1")).result == "dnc"
    finally:
        ours.close()
        theirs.close()


def test_ringback_as_early_media_then_an_answer_is_answered_only_at_the_answer(switch, conn):
    population(switch, n13800138000=Behaviour("person", early_media=True, ring=0.5))
    out = make_dialer(conn).dial(DialRequest("13800138000", purpose="callback", target="park"))
    leg = switch.channels[out.uuid]
    assert out.answered and leg.answered                 # the dialer returned at the 200 OK, not the 183
    assert leg.events.index("CHANNEL_PROGRESS_MEDIA") < leg.events.index("CHANNEL_ANSWER")


def test_engine_dialer_without_its_lists_pauses_contact_dials(switch, conn):
    population(switch, n13800138000=Behaviour("person"))
    dialer = make_dialer(conn)
    dialer.lists_required = True                        # the engine's, before the database answered
    out = dialer.dial(DialRequest("13800138000", purpose="campaign", campaign="c"))
    assert out.result == "paused" and out.retry and "do-not-call list is not loaded" in out.reason
    assert dialer.dial(DialRequest("13800138000", purpose="manual", target="park")).answered


def test_the_legs_events_follow_what_the_carrier_sent(switch, conn):
    population(switch, n13900000001=Behaviour("busy"), n13900000002=Behaviour("busy_ringing", ring=0.2),
               n13900000003=Behaviour("switched_off", ring=0.2))
    dialer = make_dialer(conn)
    legs = {n: dialer.dial(DialRequest(n, purpose="manual")).uuid for n in ("13900000001", "13900000002",
                                                                             "13900000003")}

    def names(n):
        return [e.name for e in conn.seen if e.uuid == legs[n]]
    for n in legs:
        wait_for(lambda: "CHANNEL_HANGUP_COMPLETE" in names(n))
    assert "CHANNEL_PROGRESS" not in names("13900000001")                      # 486 at once
    assert "CHANNEL_PROGRESS" in names("13900000002")                          # 180, then 486
    assert "CHANNEL_PROGRESS_MEDIA" in names("13900000003")                    # 183 announcement ...
    assert "CHANNEL_PROGRESS" not in names("13900000003")                      # ... without 180


def test_outside_values_reach_the_switch_inert(switch, conn):
    """Job ids, campaign names and extra variables come from files and forms: nothing in them
    may end the originate line, add a variable or expand on the switch."""
    population(switch, n13800138000=Behaviour("person"))
    dialer = make_dialer(conn)
    req = DialRequest("13800138000", purpose="campaign", campaign="c1,origination_uuid=x}${system(id)}",
                      job_id="job\napi shutdown", target="park", variables={"hotline_note": "a'b,c=${x}"})
    cmd, _ = dialer.command(req, "13800138000", "leg-1")
    assert "\n" not in cmd and "${" not in cmd and cmd.count("origination_uuid=") == 1
    assert cmd.startswith("originate {") and cmd.endswith("sofia/gateway/trunk/13800138000 &park()")
    engine_cmd, _ = dialer.command(DialRequest("13800138000", purpose="callback"), "13800138000", "leg-2")
    assert engine_cmd.endswith("sofia/gateway/trunk/13800138000 '&socket(127.0.0.1:8084 async full)'")
    with pytest.raises(ValueError, match="purpose"):
        dialer.dial(DialRequest("13800138000", purpose="survey"))
    out = dialer.dial(req)
    leg = switch.channels[out.uuid]
    assert out.answered and leg.variables["hotline_job"] == "job api shutdown"
    assert "$" not in leg.variables["hotline_campaign"] and "$" not in leg.variables["hotline_note"]


def test_the_trunks_dial_prefix_and_the_campaigns_caller_id(switch, conn):
    population(switch, n913800138000=Behaviour("person"))
    dialer = make_dialer(conn, dial_prefix="9", caller_id="01066668888",
                         campaigns={"c2": {"caller_id": "01066669999"}})
    hotline = dialer.dial(DialRequest("13800138000", purpose="callback", target="park"))
    camp = dialer.dial(DialRequest("13800138000", purpose="campaign", campaign="c2", target="park"))
    assert hotline.answered and camp.answered and hotline.number == "13800138000"
    assert switch.channels[hotline.uuid].variables["origination_caller_id_number"] == "01066668888"
    assert switch.channels[camp.uuid].variables["origination_caller_id_number"] == "01066669999"
    default = make_dialer(conn).command(DialRequest("13800138000"), "13800138000", "leg-3")[0]
    assert "origination_caller_id_number=12345" in default                 # the first DID


def test_redis_away_pauses_contact_dials(switch, conn, tmp_path):
    """The queues cannot be read: inbound callers may be waiting unseen, so no campaign dials."""
    from engine.acd.store import AcdStore
    from engine.infra.netutil import free_port
    from engine.outbound.gate import Gate
    population(switch, n13800138000=Behaviour("person"))
    dialer = make_dialer(conn)
    dialer.gate = Gate(AcdStore(f"redis://127.0.0.1:{free_port()}/0", prefix="t:"), dialer.cfg)
    out = dialer.dial(DialRequest("13800138000", purpose="campaign", campaign="c"))
    assert out.result == "paused" and out.retry and "cannot be read" in out.reason
    assert switch.population.phones == {}


def test_the_shipped_outbound_scenario_loads():
    from pathlib import Path

    from engine.sim.scenario import load_scenario, population
    path = Path(__file__).resolve().parent.parent / "engine" / "sim" / "scenarios" / "outbound.yaml"
    pop = population(load_scenario(path))
    assert pop.behaviour("13800000004").kind == "busy" and pop.behaviour("13912345678").kind == "person"
    assert pop.behaviour("13800000002").dtmf == ((3.0, "9"),) and pop.behaviour("15000000000") is None


def test_one_dial_string_for_every_outside_number():
    """The dialler and the agents' consult/three-way parties (engine/acd/incall.py) dial outside
    numbers through trunk_endpoint: normalised, the trunk's prefix, the trunk gateway."""
    from engine.outbound.dialer import trunk_endpoint
    from engine.outbound.numbers import InvalidNumber
    settings = default_settings(outbound_calls={"dial_prefix": "9"}, trunk={"gateway": "carrier"})
    assert trunk_endpoint(settings, "+86 139-1234-5678") == "sofia/gateway/carrier/913912345678"
    assert trunk_endpoint(settings, "110") == "sofia/gateway/carrier/9110"     # 联动: the block list decides
    with pytest.raises(InvalidNumber):
        trunk_endpoint(settings, "12")
