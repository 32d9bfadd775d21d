"""queue: hand the caller to an ACD queue (music, announcements, agents). Ends the IVR when an
agent served the caller; otherwise the outcome picks a child (overflow, exit, full, no_agents,
voicemail, callback, hangup), and an outcome without a child runs the queue's own exit action."""
SCHEMA = {"properties": {"queue": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$",
                                   "description": "a queue name of queues.yaml (letters, digits, _ . -)"},
                         "prompt": {"type": "string"},
                         "choice": {"type": "string", "description": "shown on the agent's phone"},
                         "record": {"enum": ["all", "none", "on_demand"],
                                    "description": "recording policy for this flow's callers (default: the queue's)"}},
          "required": ["queue"]}
DEFAULTS = {"prompt": None, "choice": None, "record": None}
BRANCHES = ("overflow", "exit", "full", "no_agents", "voicemail", "callback", "hangup", "error")
PROMPT_FIELDS = ("prompt",)
SERVED = ("done", "transferred")


def handle(call, node, ctx):
    p = ctx.params(node)
    acd = getattr(ctx.runtime, "acd", None)
    if acd is None:
        # No agents configured here (a test bench, an IVR-only site): the caller still asked for a
        # person, and the daemon's answer to that (an apology, the CDR tagged) applies.
        call.log.error("queue node %s: no ACD configured (agents/queues files)", p["queue"])
        ctx.finish("agent", queue=p["queue"])
        return None
    if p["prompt"]:
        ctx.play(call, p["prompt"], interruptible=False)
    if p["choice"]:
        call.variables["ivr_choice"] = p["choice"]
    if p["record"]:
        call.record_policy = p["record"]
    # The flow's own survey prompts (survey, survey_invalid, survey_thanks, survey_comment), if it
    # has them, replace the default Mandarin texts when the queue plays the survey after the call.
    call.survey_prompts = ctx.survey_prompts(call)
    outcome = acd.serve(call, p["queue"])
    if outcome in SERVED:
        ctx.finish("served", queue=call.info.get("queue", p["queue"]), agent=call.info.get("agent"))
        return None
    if outcome in (node.get("children") or {}):
        return outcome
    if outcome == "error":
        return "error"
    from engine.acd.exits import run_exit
    done = run_exit(acd, call, outcome, p["queue"])
    ctx.finish(done, queue=p["queue"])
    return None
