"""The FreeSWITCH XML dialplan, read the way mod_dialplan_xml reads it, for the subset we ship.

Supported: `<include>` files holding `<context name=...>` with `<extension name= continue=>`,
`<condition field= expression=>` (all conditions must match; a condition without a field always
matches), `<action application= data= inline=>`, `<anti-action>`, regex captures `$1..$9` in data,
and `<X-PRE-PROCESS cmd="set" data="name=value"/>` global variables, expanded as `$${name}` when
the files are read (and `${name}` at execution time, like channel variables).
"""
import glob
import logging
import os
import re
import time
import xml.etree.ElementTree as ET

log = logging.getLogger("hotline.sim.dialplan")

_PRE = re.compile(r"<X-PRE-PROCESS\s+cmd=\"set\"\s+data=\"([^\"=]+)=([^\"]*)\"\s*/>")
_GLOBAL = re.compile(r"\$\$\{([A-Za-z0-9_.-]+)\}")
_VAR = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")
_CAPTURE = re.compile(r"\$(\d)")
_STRFTIME = re.compile(r"\$\{strftime\(([^)]*)\)\}")


class DialplanError(Exception):
    pass


class Dialplan:
    def __init__(self, dirs=(), global_vars=None):
        self.matched_name = ""            # name of the extension the last lookup matched first
        self.global_vars = global_vars if global_vars is not None else {}
        self.contexts = {}          # name -> [extension dict]
        self.context_xml = {}       # name -> the first <context> element of that name (xml_locate)
        self.files = []
        self.on_api = None          # callback(command, arg): the switch emits an API event
        for d in dirs:
            self.load_dir(d)

    def load_dir(self, path):
        files = sorted(glob.glob(os.path.join(path, "**", "*.xml"), recursive=True)) \
            if os.path.isdir(path) else [path]
        for f in files:
            self.load_file(f)

    def load_file(self, path):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        for name, value in _PRE.findall(text):
            self.global_vars.setdefault(name, value)     # Switch(global_vars=...) wins
        text = _PRE.sub("", text)
        text = _GLOBAL.sub(lambda m: self.global_vars.get(m.group(1), ""), text)
        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            raise DialplanError(f"{path}: {exc}") from None
        contexts = [root] if root.tag == "context" else root.iter("context")
        for ctx in contexts:
            self.context_xml.setdefault(ctx.get("name", "default"), ctx)
            exts = self.contexts.setdefault(ctx.get("name", "default"), [])
            for ext in ctx.findall("extension"):
                exts.append(self._extension(ext, path))
        self.files.append(path)

    @staticmethod
    def _extension(ext, path):
        conditions = []
        for cond in ext.findall("condition"):
            expr = cond.get("expression")
            try:
                regex = re.compile(expr) if expr is not None else None
            except re.error as exc:
                raise DialplanError(f"{path}: extension {ext.get('name')}: bad expression "
                                    f"{expr!r}: {exc}") from None
            conditions.append({
                "field": cond.get("field"), "regex": regex,
                "actions": [(a.get("application"), a.get("data", ""), a.get("inline") == "true")
                            for a in cond.findall("action")],
                "anti": [(a.get("application"), a.get("data", ""), a.get("inline") == "true")
                         for a in cond.findall("anti-action")]})
        return {"name": ext.get("name", ""), "continue": ext.get("continue") == "true",
                "conditions": conditions}

    def field_value(self, ch, field):
        if field.startswith("${") and field.endswith("}"):
            return self.expand(ch, field)
        values = {"destination_number": ch.destination_number,
                  "caller_id_number": ch.caller_id_number, "caller_id_name": ch.caller_id_name,
                  "ani": ch.orig_caller_id_number, "context": ch.context,
                  "network_addr": ch.network_addr, "uuid": ch.uuid, "source": ch.source,
                  "username": ch.username or "", "chan_name": ch.name}
        return values.get(field, ch.variables.get(field, ""))

    def expand(self, ch, text):
        if "${" not in text:
            return text

        text = _STRFTIME.sub(lambda m: self._strftime(m.group(1)), text)

        def var(m):
            name = m.group(1)
            if ch is not None and name in ch.variables:
                return ch.variables[name]
            return self.global_vars.get(name, "")
        return _VAR.sub(var, text)

    def _strftime(self, fmt):
        if self.on_api is not None:
            self.on_api("strftime", fmt)      # FreeSWITCH runs ${strftime()} as an api call
        return time.strftime(fmt.replace("%T", "%H:%M:%S"))

    def lookup(self, ch):
        """[(app, data)] for the channel's destination in its context; None if nothing matches."""
        found = []
        matched_any = False
        self.matched_name = ""
        for ext in self.contexts.get(ch.context, []):
            ext_actions = []
            matched = True
            for cond in ext["conditions"]:
                m = None
                if cond["field"] is None or cond["regex"] is None:
                    ok = True
                else:
                    m = cond["regex"].search(self.field_value(ch, cond["field"]))
                    ok = m is not None
                chosen = cond["actions"] if ok else cond["anti"]
                for app, data, inline in chosen:
                    if m is not None:
                        data = _CAPTURE.sub(lambda c: m.group(int(c.group(1))) or ""
                                            if int(c.group(1)) <= (m.re.groups or 0) else "", data)
                    if inline and app == "set":
                        name, _, value = self.expand(ch, data).partition("=")
                        ch.set_var(name.strip(), value)
                        continue
                    ext_actions.append((app, data))
                if not ok:
                    matched = False
                    break
            if matched:
                self.matched_name = self.matched_name or ext["name"]
                matched_any = True
                found.extend(ext_actions)
                if not ext["continue"]:
                    break
        if not matched_any or not found:
            return None
        return found
