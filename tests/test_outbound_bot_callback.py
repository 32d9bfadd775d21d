"""The bot's registration of a call-back request becomes a callback job: a bot call over the
simulator whose dialogue finishes a `callback` task with the caller's number; its CDR carries the
promise like the queue's callback offer, and the outbox feed makes the job (it made none before)."""
import pytest

from engine.outbound import jobs
from engine.outbound.feed import JobFeed
from tests import botaudio
from tests.botfakes import ScriptedDialogue
from tests.outboundfix import outbound_db
from tests.test_bot_session import GREETING, bot_call, wait_playback

pytestmark = pytest.mark.skipif(not botaudio.have_tools(), reason="espeak-ng and sox needed")


class CallbackDialogue(ScriptedDialogue):
    """Any key: the callback task is done with the number the caller gave."""

    def on_dtmf(self, digit):
        self.calls.append(("dtmf", digit))
        return self._bot(["已为您登记回电。"], exit="done", intent="callback", slots={"phone": "13900139000"})


def test_bot_callback_registration_makes_a_job(tmp_path):
    def act(ch, log):
        wait_playback(ch, log)
        ch.press("1")

    session, exit_, ch, cdr, log = bot_call(tmp_path, CallbackDialogue(GREETING), botaudio.FakeBackend("네"), act)
    assert exit_ == "done"
    assert "callback" in cdr["tags"]
    assert cdr["extra"]["callback_number"] == "13900139000" and cdr["extra"]["callback_source"] == "bot"
    db = outbound_db(tmp_path / "var")
    [job] = JobFeed(db).run_once()
    assert (job["reason"], job["number"], job["call_uuid"]) == ("bot", "13900139000", cdr["uuid"])
    assert jobs.list_jobs(db, state="pending") == [job]


def test_a_bot_call_without_the_task_makes_none(tmp_path):
    def act(ch, log):
        wait_playback(ch, log)
        ch.press("1")

    session, exit_, ch, cdr, log = bot_call(tmp_path, ScriptedDialogue(GREETING), botaudio.FakeBackend("네"), act)
    assert "callback" not in cdr["tags"]
    assert JobFeed(outbound_db(tmp_path / "var")).run_once() == []
