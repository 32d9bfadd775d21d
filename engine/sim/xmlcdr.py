"""mod_xml_cdr as the simulator's switch writes it: `<log-dir>/<uuid>.cdr.xml` at CS_REPORTING.

Layout of switch_ivr_generate_xml_cdr(): <cdr core-uuid=...> with channel_data, variables (values
URL-encoded with `encode=true`, as our xml_cdr.conf.xml sets), app_log, and callflow with the
caller_profile and times. Written to a temporary name first, then renamed, so a reader never sees
half a file.
"""
import os
from xml.sax.saxutils import escape, quoteattr

from urllib.parse import quote

from engine.sim.headers import _SAFE


def url_encode(text):
    return quote(text, safe=_SAFE)


def write(ch, log_dir):
    os.makedirs(log_dir, exist_ok=True)
    v = ch.variables
    lines = ['<?xml version="1.0"?>',
             f'<cdr core-uuid={quoteattr(ch.switch.core_uuid)} switchname={quoteattr(ch.switch.hostname)}>',
             "  <channel_data>",
             f"    <state>CS_REPORTING</state>",
             f"    <direction>{escape(ch.direction)}</direction>",
             "    <state_number>11</state_number>",
             "  </channel_data>",
             "  <variables>"]
    for name, value in v.items():
        if name and name.replace("_", "a").replace("-", "a").isalnum():
            lines.append(f"    <{name}>{escape(url_encode(str(value)))}</{name}>")
    lines += ["  </variables>",
              f'  <callflow dialplan="XML" unique-id={quoteattr(ch.uuid)} profile_index="1">',
              "    <caller_profile>"]
    profile = {"username": ch.caller_id_number, "dialplan": "XML", "caller_id_name": ch.caller_id_name,
               "ani": ch.orig_caller_id_number, "caller_id_number": ch.caller_id_number,
               "network_addr": v.get("sip_network_ip", ""), "destination_number": ch.destination_number,
               "uuid": ch.uuid, "source": "mod_sofia", "context": ch.context, "chan_name": ch.name}
    for name, value in profile.items():
        lines.append(f"      <{name}>{escape(url_encode(str(value or '')))}</{name}>")
    lines += ["    </caller_profile>", "    <times>"]
    for name, key in (("created_time", "created"), ("answered_time", "answered"),
                      ("hangup_time", "hangup")):
        lines.append(f"      <{name}>{int(ch.times.get(key) or 0)}</{name}>")
    lines += ["    </times>", "  </callflow>", "</cdr>", ""]
    path = os.path.join(log_dir, f"{ch.uuid}.cdr.xml")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
    return path
