"""JSON Schema errors as sentences an administrator reads without knowing JSON Schema, and
"did you mean" hints (the IVR flow and bot file loaders share these).

jsonschema's own texts ("Additional properties are not allowed ('promt' was unexpected)",
"'abc' is not of type 'integer'") name the validator, not the key or what would be right.
`describe(error)` gives [(path, sentence)]: the path of the key at fault (a list of keys and
indexes, for positions) and a sentence naming that key and what is allowed there.
"""
import difflib

_TYPES = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
          "array": "a list", "object": "a mapping (key: value)", "null": "empty"}


def closest(word, choices):
    """The one of `choices` that `word` is most likely a misspelling of, or None."""
    near = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return near[0] if near else None


def did_you_mean(word, choices):
    """' (did you mean 'x'?)' for the closest of `choices`, or ''."""
    near = closest(word, choices)
    return f" (did you mean {near!r}?)" if near else ""


def kind(value):
    """What a YAML value is, in words: the text 'abc', the number 5, a list, a mapping, nothing."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__


def _name(path, root):
    """How a sentence names the place: 'cause', 'schedule.windows.a.days item 2', or `root`."""
    parts = list(path)
    if not parts:
        return root
    if isinstance(parts[-1], int):
        return f"{_name(parts[:-1], root) or 'the list'} item {parts[-1] + 1}"
    return ".".join(map(str, parts))


def _says(root, sentence):
    """`root` + sentence; an empty root (the caller prefixes the place itself) drops the space."""
    return f"{root} {sentence}" if root else sentence


def _wanted(schema):
    """What a schema allows, in words (for anyOf/oneOf branches)."""
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    types = schema.get("type")
    types = types if isinstance(types, list) else [types] if types else []
    words = [_TYPES.get(t, t) for t in types]
    if "object" in types and schema.get("properties") and schema.get("additionalProperties") is False:
        words[types.index("object")] = "a mapping with " + ", ".join(schema["properties"])
    return " or ".join(words) or "something else"


def describe(error, root="the file"):
    """[(path, sentence)] for one jsonschema ValidationError (several for several unknown keys).
    `root` names the validated document in sentences about it ('' when the caller's prefix does)."""
    path = list(error.absolute_path)
    schema, value, name = error.schema, error.instance, _name(path, root)
    v, arg = error.validator, error.validator_value
    if v == "additionalProperties" and arg is False and isinstance(value, dict):
        known = list(schema.get("properties", {}))
        allowed = ", ".join(known) if known else "none"
        where = f" in {name}" if path else ""
        return [(path + [key], f"unknown key {str(key)!r}{where}{did_you_mean(key, known)}; allowed keys: {allowed}")
                for key in value if key not in known]
    if v == "required":
        # jsonschema gives one error per missing key, each with the whole list: keep this one's
        missing = [k for k in arg if isinstance(value, dict) and k not in value and error.message.startswith(repr(k))]
        # a misspelt key ('promt') is reported as unknown with "did you mean 'prompt'": once is enough
        misspelt = {closest(k, schema.get("properties", {})) for k in value} if isinstance(value, dict) else set()
        missing = [k for k in missing if k not in misspelt]
        return [(path, _says(name, f"needs the key {k!r}")) for k in missing]
    if v == "type":
        wanted = " or ".join(_TYPES.get(t, t) for t in (arg if isinstance(arg, list) else [arg]))
        return [(path, _says(name, f"must be {wanted}, not {kind(value)}"))]
    if v == "enum":
        return [(path, _says(name, f"is {kind(value)}{did_you_mean(value, arg)}; allowed: {', '.join(map(str, arg))}"))]
    if v == "const":
        return [(path, _says(name, f"must be {arg!r}, not {kind(value)}"))]
    if v == "pattern":
        what = schema.get("description") or f"text matching the pattern {arg}"
        return [(path, _says(name, f"must be {what}, not {kind(value)}"))]
    if v in ("minimum", "exclusiveMinimum"):
        return [(path, _says(name, f"must be {'at least' if v == 'minimum' else 'more than'} {arg}, not {value!r}"))]
    if v in ("maximum", "exclusiveMaximum"):
        return [(path, _says(name, f"must be {'at most' if v == 'maximum' else 'less than'} {arg}, not {value!r}"))]
    if v == "minLength":
        return [(path, _says(name, "must not be empty") if arg == 1 else _says(name, f"needs at least {arg} characters"))]
    if v == "maxLength":
        return [(path, _says(name, f"is longer than {arg} characters"))]
    if v == "minItems":
        return [(path, _says(name, f"needs at least {arg} item{'s' if arg != 1 else ''}"))]
    if v == "maxItems":
        return [(path, _says(name, f"takes at most {arg} item{'s' if arg != 1 else ''}"))]
    if v == "uniqueItems":
        return [(path, _says(name, "lists the same item twice"))]
    if v in ("anyOf", "oneOf"):
        # The branch of the instance's own kind says what is wrong inside it (a misspelt key of a
        # mapping); without one, say which kinds are allowed.
        for branch_errors in _by_branch(error):
            if branch_errors and all(e.validator != "type" or e.relative_path for e in branch_errors):
                out = []
                for sub in branch_errors:
                    out.extend(describe(sub, root))
                return out
        return [(path, _says(name, f"must be {' or '.join(_wanted(s) for s in arg)}, not {kind(value)}"))]
    return [(path, f"{name}: {error.message}" if name else error.message)]


def _by_branch(error):
    branches = {}
    for sub in error.context or []:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    return [branches[k] for k in sorted(branches)]
