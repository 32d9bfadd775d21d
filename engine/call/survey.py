"""Post-call satisfaction survey (issue 6 section 2).

The caller scores 1-5 (1 very satisfied ... 5 very dissatisfied); one retry on no input or an
invalid key; then thanks and hang-up. A caller who hangs up first is "not rated". After a low
score (4-5) the caller may leave a short voice comment. The agent's statistics are the ACD's
business: we only store the score in call.info and return it.
"""
import os
from dataclasses import dataclass

from engine.call.port import CallGone

DEFAULT_TEXTS = {
    "survey": "请对本次服务进行评价。非常满意请按1，满意请按2，一般请按3，不满意请按4，非常不满意请按5。",
    "invalid": "您的输入无效，请重新输入。",
    "thanks": "感谢您的评价，再见。",
    "comment": "请在提示音后留下您的意见，按井号键结束。",
}
VALID_SCORES = "12345"
# An IVR flow's prompts that replace the default texts: flow prompt id -> survey prompt key.
FLOW_PROMPTS = {"survey": "survey", "survey_invalid": "invalid", "survey_thanks": "thanks",
                "survey_comment": "comment"}


@dataclass(frozen=True)
class SurveySettings:
    timeout: float = 5.0            # seconds to wait for the key after the prompt
    allow_comment: bool = True      # offer a voice comment after a score of 4 or 5
    comment_max_seconds: float = 60.0
    comment_dir: str = "recordings"  # where comments are recorded


def resolve_prompts(prompts=None, render=None):
    """Audio paths for each prompt: given paths win, else render(default Mandarin text)."""
    prompts = dict(prompts or {})
    missing = [k for k in DEFAULT_TEXTS if k not in prompts]
    if missing and render is None:
        raise ValueError("survey prompts missing %s and no render(text) given" % ", ".join(missing))
    for key in missing:
        prompts[key] = render(DEFAULT_TEXTS[key])
    return prompts


def _ask(call, prompts, settings):
    """One retry on no input or an invalid key; returns the score or None."""
    for attempt in range(2):
        if attempt:
            call.play([prompts["invalid"]], interruptible=False)
        call.flush_digits()
        call.play([prompts["survey"]], interruptible=True)
        key = call.get_digits(1, settings.timeout, settings.timeout, "")
        if key and key in VALID_SCORES:
            return int(key)
        call.log.info("survey: %s on attempt %d", "invalid key %r" % key if key else "no input",
                      attempt + 1)
    return None


def run_survey(call, prompts=None, settings=None, render=None):
    """Run the survey on a call; returns the score 1-5 or None (not rated)."""
    settings = settings or SurveySettings()
    prompts = resolve_prompts(prompts, render)
    call.info["satisfaction"] = None
    try:
        score = _ask(call, prompts, settings)
        if score is None:
            call.tags.append("survey_not_rated")
        else:
            call.info["satisfaction"] = score
            call.log.info("survey: score %d", score)
        if score in (4, 5) and settings.allow_comment:
            call.play([prompts["comment"]], interruptible=False)
            path = os.path.join(settings.comment_dir, "%s-survey.wav" % call.uuid)
            got = call.record(path, settings.comment_max_seconds)
            call.info["survey_comment"] = got.get("path", path)
        call.play([prompts["thanks"]], interruptible=False)
        call.hangup()
    except CallGone:
        if call.info.get("satisfaction") is None and "survey_not_rated" not in call.tags:
            call.tags.append("survey_not_rated")
            call.log.info("survey: caller hung up before rating")
    return call.info.get("satisfaction")
