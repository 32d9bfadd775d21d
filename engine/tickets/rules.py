"""Which tickets a call's CDR asks for (pure: a CDR dict in, ticket specs out).

- voicemail (tag `voicemail:<box>`) -> a voicemail ticket with the message file
  (extra.voicemail_path; the IVR voicemail node may keep it in extra.variables instead); never one
  pointing at a file that does not exist: without the file it is a callback ticket;
- missed (the caller reached a queue and no agent took the call, or the call is tagged
  `wanted_agent` or `callback`) -> a callback ticket, unless the caller left a voicemail (that
  ticket already means "call them back") or was transferred on to an outside number;
- a survey score of 4 (不满意) or 5 (非常不满意) -> a complaint_review ticket.
"""
import os

from engine.tickets.config import KIND_CATEGORIES

SCORE_WORDS = {4: "不满意", 5: "非常不满意"}


def tickets_for_cdr(cdr):
    """[{kind, category, summary, recording?}] for one CDR (outbox payload or stored row)."""
    if not isinstance(cdr, dict) or not cdr.get("uuid"):
        return []
    tags = [t for t in (cdr.get("tags") or []) if isinstance(t, str)]
    extra = cdr.get("extra") if isinstance(cdr.get("extra"), dict) else {}
    if extra.get("direction") == "outbound" or "outbound" in tags:
        return []       # our own callback/campaign dials: their results go to the job's ticket
    out = []
    boxes = [t.split(":", 1)[1] for t in tags if t.startswith("voicemail:")]
    if boxes:
        path = voicemail_path(extra)
        seconds = extra.get("voicemail_seconds") or (extra.get("variables") or {}).get("voicemail_seconds")
        if path and os.path.isfile(path):
            summary = f"来电留言（信箱 {boxes[-1]}" + (f"，{seconds} 秒" if seconds else "") + "）"
            out.append(spec("voicemail", summary, recording=path))
        else:
            # the caller wanted to leave a message and none was recorded: they still need a call
            out.append(spec("callback", f"来电人留言未录成（信箱 {boxes[-1]}），请回拨 "
                                        f"{cdr.get('caller_number') or '?'}"))
    elif missed(cdr, tags, extra):
        out.append(spec("callback", callback_summary(cdr, tags, extra)))
    score = cdr.get("satisfaction")
    if isinstance(score, int) and not isinstance(score, bool) and score in SCORE_WORDS:
        agent = cdr.get("agent") or "?"
        summary = f"满意度评价：{SCORE_WORDS[score]}（{score}），坐席 {agent}"
        if extra.get("survey_comment"):
            summary += f"；来电人留有语音意见 {extra['survey_comment']}"
        out.append(spec("complaint_review", summary))
    return out


def missed(cdr, tags, extra):
    if "wanted_agent" in tags or "callback" in tags:
        return True
    return bool(cdr.get("queue")) and not cdr.get("agent") and not extra.get("transfer")


def callback_summary(cdr, tags, extra):
    number = extra.get("callback_number")
    if "callback" in tags:
        return f"来电人要求回拨 {number or cdr.get('caller_number') or '?'}"
    if cdr.get("queue"):
        wait = cdr.get("wait_seconds")
        waited = f"，等待 {wait:.0f} 秒" if isinstance(wait, (int, float)) else ""
        return f"未接通来电（队列 {cdr['queue']}{waited}），请回拨"
    return "来电人要求人工服务未能接通，请回拨"


def voicemail_path(extra):
    variables = extra.get("variables") if isinstance(extra.get("variables"), dict) else {}
    path = extra.get("voicemail_path") or variables.get("voicemail_path")
    return path if isinstance(path, str) and path else None


def spec(kind, summary, recording=None):
    out = {"kind": kind, "category": KIND_CATEGORIES[kind], "summary": summary}
    if recording:
        out["recording"] = recording
    return out
