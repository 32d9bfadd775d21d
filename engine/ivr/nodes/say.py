"""say: read a value out in Mandarin (number, digits, money, date, ID number) via engine.media.say, then 'next'."""
SCHEMA = {"properties": {"kind": {"enum": ["number", "digits", "money", "date", "id_number"]},
                         "value": {"type": "string", "description": "jinja2 template over call variables"},
                         "before": {"type": "string", "description": "text said first (a jinja2 template too)"},
                         "after": {"type": "string", "description": "text said after (a jinja2 template too)"}},
          "required": ["kind", "value"]}
DEFAULTS = {"before": "", "after": ""}
BRANCHES = ("next", "error")
PROMPT_FIELDS = ()


def _spoken(kind, raw):
    from engine.media import say
    import datetime
    if kind == "number":
        return say.number(int(raw))
    if kind == "money":
        return say.money(float(raw))
    if kind == "date":
        return say.date(datetime.date.fromisoformat(raw))
    if kind == "id_number":
        return say.id_number(raw)
    return say.digits(raw)


def handle(call, node, ctx):
    p = ctx.params(node)
    raw = ctx.template(p["value"], call).strip()
    # before/after may name call variables too (a follow-up call reads the contact's name and
    # ticket summary around the date)
    text = ctx.template(p["before"], call) + _spoken(p["kind"], raw) + ctx.template(p["after"], call)
    ctx.speak(call, text)
    return "next"
