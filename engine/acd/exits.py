"""Where a caller goes when a queue lets them go without an agent: voicemail, a callback request,
or a polite goodbye. Used when the IVR `queue` node has no child for that outcome, and for callers
the IVR hands to a person (`agent`/`fallback` outcomes). What the caller hears is the queue's
`exit_prompts` (etc/queues.yaml, reloaded with it); TEXTS are their defaults."""
import os

from engine.esl import commands

TEXTS = {
    "voicemail": "坐席繁忙，请在提示音后留言，我们会尽快处理，按井号键结束。",
    "callback": "坐席繁忙。我们将回拨您的来电号码{number}，确认请按1，取消请按2。",
    "callback_ok": "已为您登记回拨，请保持电话畅通，再见。",
    "goodbye": "人工服务暂时无法接通，请稍后再拨，感谢您的来电。",
    "full": "当前排队人数较多，请稍后再拨，感谢您的来电。",
}


def texts_for(acd, queue_name):
    """The queue's exit prompts; the defaults for a queue the configuration does not (or no
    longer) have: the caller still hears a sentence, never silence."""
    queue = acd.config.queues.get(queue_name) if getattr(acd, "config", None) else None
    prompts = getattr(queue, "exit_prompts", None)
    texts = {k: getattr(prompts, k) for k in TEXTS} if prompts is not None else dict(TEXTS)
    # `{{` is a brace (the file is checked: only `callback` has a placeholder, {number})
    return {k: v if k == "callback" else v.format() for k, v in texts.items()}


def run_exit(acd, call, action, queue_name):
    """Carry out a queue exit action; returns the outcome name for the IVR/CDR."""
    texts = texts_for(acd, queue_name)      # the queue's own, read at each exit (reloads apply)
    if action == "voicemail":
        call.play([acd.prompt(texts["voicemail"])], interruptible=False)
        path = os.path.join(str(acd.settings.paths.recordings), "voicemail", queue_name, f"{call.uuid}.wav")
        result = call.record(path, 120, 5, "#")        # makes the box's directory
        call.tags.append("voicemail:" + queue_name)
        call.variables["voicemail_path"] = result.get("path") or ""
        call.variables["voicemail_seconds"] = result.get("seconds", 0)
        call.info.setdefault("extra", {})["voicemail_path"] = call.variables["voicemail_path"] or None
        call.hangup()
        return "voicemail"
    if action == "callback":
        number = commands.safe_number(call.caller_id_number)
        if number:
            spoken = " ".join(number)           # digit by digit, never "a hundred billion..."
            call.flush_digits()
            call.play([acd.prompt(texts["callback"].format(number=spoken))], interruptible=True)
            if call.get_digits(1, 6.0, 3.0, "") == "1":
                call.tags.append("callback")
                call.info.setdefault("extra", {})["callback_number"] = number
                call.play([acd.prompt(texts["callback_ok"])], interruptible=False)
                call.hangup()
                return "callback"
        call.tags.append("wanted_agent")
        call.play([acd.prompt(texts["goodbye"])], interruptible=False)
        call.hangup()
        return "hangup"
    text = texts["full"] if action == "full" else texts["goodbye"]
    call.tags.append("wanted_agent")
    call.play([acd.prompt(text)], interruptible=False)
    call.hangup()
    return "hangup"
