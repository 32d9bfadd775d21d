"""bot: a voice bot talks with the caller (engine.bot.session) until it exits.

Branches (a `bot` ends the IVR like a queue when its branch has no child): `human` (the caller asked for a person, or the bot gave up — the child is typically a
`queue` node; the intent, slots and a summary are on the channel for the agent's screen), `done`
(the bot answered), `error` (no recogniser configured, a broken bot file, the tap failed). A
`human` exit without a child hands the caller to an agent the way the IVR's 'agent' outcome does;
`done` without a child hangs up.

`bot` is the bot definition's path relative to the flow file's directory (for flows at the top of
the flows dir, relative to the flows dir: `bots/city_hotline.yaml`), like a prompt's `file`.
Speech input needs settings.asr.vosk_model; without it the node logs why and takes `error`.
"""
import pathlib

SCHEMA = {"properties": {
    "bot": {"type": "string", "description": "bot definition YAML, relative to this flow file's directory"},
    "queue_vars": {"type": "boolean", "description": "on hand-off, show the bot's intent on the agent's phone"},
    "no_speech_seconds": {"type": "number", "minimum": 0.5, "maximum": 60,
                          "description": "silence before the bot's no-speech turn (default: the bot file's)"},
    "max_seconds": {"type": "number", "minimum": 10, "maximum": 7200,
                    "description": "a conversation longer than this goes to a person"},
    "survey": {"type": "boolean",
               "description": "after the bot answered (exit done), play the satisfaction survey"}},
    "required": ["bot"]}
DEFAULTS = {"queue_vars": True, "no_speech_seconds": None, "max_seconds": 900, "survey": False}
BRANCHES = ("human", "done", "error")
PROMPT_FIELDS = ()


def check_files(node, flow_dir):
    """At load: the bot file exists and loads (once the dialogue module is there)."""
    path = pathlib.Path(flow_dir) / str(node.get("bot", ""))
    if not path.is_file():
        return [("bot", f"bot file {node.get('bot')} not found (relative to {flow_dir})")]
    try:
        from engine.bot.services import load_bot_file
        load_bot_file(path)
    except ImportError:
        return []
    except Exception as exc:
        return [("bot", f"bot file {node.get('bot')}: {exc}")]
    return []


def handle(call, node, ctx):
    from engine.bot.session import BotSession, options_from_bot
    p = ctx.params(node)
    services = getattr(ctx.runtime, "bot", None)
    if services is None or services.backend is None:
        call.log.error("bot node: speech input is off (settings asr.vosk_model is unset); taking 'error'")
        return "error"
    path = ctx.flow.path.parent / p["bot"]
    try:
        bot = services.bot(path)
        dialogue = services.dialogue(bot, call)
        options = options_from_bot(bot, no_speech_seconds=p["no_speech_seconds"], max_seconds=p["max_seconds"])
    except Exception as exc:
        call.log.error("bot node: %s: %s", path, exc)
        return "error"
    session = BotSession(call, dialogue, services, options, bot_name=getattr(bot, "name", path.stem))
    if not p["queue_vars"]:
        session.set_queue_choice = False
    exit_ = session.run()
    children = node.get("children") or {}
    if exit_ == "done" and p["survey"] and not call.gone:
        _survey(call, ctx)
    if exit_ == "human" and "human" not in children:
        ctx.finish("agent", reason="bot hand-off", intent=call.variables.get("bot_intent"))
        return None
    if exit_ == "done" and "done" not in children:
        # the bot answered and said goodbye: the call ends here (an `error` without a child
        # goes the runtime's way: the flow's fallback, then an agent)
        ctx.finish("bot_done")
        call.hangup("NORMAL_CLEARING")
        return None
    return exit_


def _survey(call, ctx):
    """A bot-only call's satisfaction survey: the flow's survey prompts if it has them, else the
    default texts rendered by the flow's renderer. The score goes to the CDR like a queue call's."""
    from engine.call.port import CallGone
    from engine.call.survey import SurveySettings, run_survey
    prompts = ctx.survey_prompts(call)
    # comments go beside the voicemail boxes (the recordings directory)
    settings = SurveySettings(comment_dir=str(pathlib.Path(ctx.runtime.voicemail_dir).parent))
    try:
        run_survey(call, prompts=prompts or None, settings=settings,
                   render=lambda text: str(ctx.runtime.renderer.render(text, fixed=True)))  # default texts
    except CallGone:
        pass
