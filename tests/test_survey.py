import logging

import pytest

from engine.call.port import CallGone
from engine.call.survey import SurveySettings, run_survey

PROMPTS = {"survey": "s.wav", "invalid": "i.wav", "thanks": "t.wav", "comment": "c.wav"}


class FakeCall:
    def __init__(self, keys, gone_after=None):
        self.uuid, self.info, self.tags = "u1", {}, []
        self.log = logging.getLogger("fake")
        self.keys = list(keys)
        self.played, self.recorded, self.hung = [], [], False
        self.gone_after = gone_after

    def _check(self):
        if self.gone_after is not None and len(self.played) >= self.gone_after:
            raise CallGone()

    def play(self, sources, interruptible=True):
        self._check()
        self.played.extend(sources)
        return ""

    def flush_digits(self):
        pass

    def get_digits(self, max_digits, timeout, inter, terminators="#"):
        self._check()
        return self.keys.pop(0) if self.keys else ""

    def record(self, path, max_seconds, silence_seconds=3.0, terminators="#"):
        self.recorded.append((path, max_seconds))
        return {"path": path, "seconds": 3}

    def hangup(self, cause="NORMAL_CLEARING"):
        self.hung = True


@pytest.mark.parametrize("score", [1, 2, 3, 4, 5])
def test_each_score_stored(score, tmp_path):
    call = FakeCall([str(score)])
    got = run_survey(call, PROMPTS, SurveySettings(comment_dir=str(tmp_path)))
    assert got == score and call.info["satisfaction"] == score
    assert call.hung and call.played[-1] == "t.wav"
    assert bool(call.recorded) == (score >= 4)
    if score >= 4:
        assert call.info["survey_comment"] == str(tmp_path / "u1-survey.wav")


def test_invalid_then_valid_retries_once():
    call = FakeCall(["9", "2"])
    assert run_survey(call, PROMPTS) == 2
    assert call.played[:3] == ["s.wav", "i.wav", "s.wav"]


def test_two_timeouts_not_rated():
    call = FakeCall(["", "7", "1"])
    assert run_survey(call, PROMPTS) is None
    assert call.info["satisfaction"] is None and "survey_not_rated" in call.tags
    assert call.hung and call.keys == ["1"]  # no third attempt


def test_early_hangup_not_rated():
    call = FakeCall(["1"], gone_after=0)
    assert run_survey(call, PROMPTS) is None
    assert call.info["satisfaction"] is None and call.tags == ["survey_not_rated"]


def test_render_supplies_missing_prompts():
    call = FakeCall(["3"])
    assert run_survey(call, {}, render=lambda text: "tts/%d.wav" % len(text)) == 3
    with pytest.raises(ValueError):
        run_survey(FakeCall(["3"]), {})
