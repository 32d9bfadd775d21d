"""mod_xml_cdr as the simulator's switch writes it, at CS_REPORTING of every leg it logs.

Which legs, and the file names, as the real switch with the vanilla xml_cdr.conf.xml did in fixture 11
(`log-b-leg=false`, `prefix-a-leg=true`; its `.files/` are the real switch's own files):
- a leg with an originator caller profile (the B leg of a `bridge`, the second leg of a uuid_bridge)
  gets no file (mod_xml_cdr's my_on_reporting: `is_b = switch_channel_get_originator_caller_profile`);
- every other leg gets `a_<uuid>.cdr.xml`: the trunk's inbound leg, and every leg originated by
  API (a consult or supervisor leg, a test caller), whatever its variables say.

Layout of switch_ivr_generate_xml_cdr(): <cdr core-uuid switchname> with channel_data, call-stats
(legs with media), variables (values URL-encoded with `encode=true`, empty ones left out), app_log
(every application run, expanded data), and one <callflow> per caller profile, newest first
(a transfer adds one), each with the matched extension, the caller_profile (raw text, not
URL-encoded) with the bridged partner's profile, and the times. The real switch writes the final
name directly; the simulator renames a temporary file so that a test never reads half a file.
"""
import os
import uuid as _uuid
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from engine.sim.headers import _SAFE

# channel_data flags/caps of fixture 11's inbound leg: switch internals nothing reads, kept so the
# file has the real layout
_FLAGS = "0=1;1=1;3=1;39=1;40=1;42=1;45=1;50=1;55=1;95=1;107=1;113=1;114=1;123=1;160=1;165=1;166=1"
_CAPS = "1=1;2=1;3=1;4=1;5=1;6=1;8=1;9=1;10=1"
_PROFILE_FIELDS = ("username", "dialplan", "caller_id_name", "caller_id_number", "callee_id_name",
                   "callee_id_number", "ani", "aniii", "network_addr", "rdnis", "destination_number",
                   "uuid", "source", "context", "chan_name")
_TIMES = (("created_time", "created"), ("profile_created_time", "created"), ("progress_time", "progress"),
          ("progress_media_time", "progress_media"), ("answered_time", "answered"),
          ("bridged_time", "bridged"), ("last_hold_time", None), ("hold_accum_time", None),
          ("hangup_time", "hangup"), ("resurrect_time", None), ("transfer_time", "transfer"))
_IN_STATS = ("raw_bytes", "media_bytes", "packet_count", "media_packet_count", "skip_packet_count",
             "jitter_packet_count", "dtmf_packet_count", "cng_packet_count", "flush_packet_count",
             "largest_jb_size", "jitter_min_variance", "jitter_max_variance", "jitter_loss_rate",
             "jitter_burst_rate", "mean_interval", "flaw_total", "quality_percentage", "mos")
_OUT_STATS = ("raw_bytes", "media_bytes", "packet_count", "media_packet_count", "skip_packet_count",
              "dtmf_packet_count", "cng_packet_count")


def url_encode(text):
    return quote(text, safe=_SAFE)


def file_name(ch, prefix_a=True):
    return f"{'a_' if prefix_a else ''}{ch.uuid}.cdr.xml"


def on_reporting(ch):
    """Write the leg's file if mod_xml_cdr would (switch.xml_cdr_log_b / xml_cdr_prefix_a are the
    log-b-leg / prefix-a-leg parameters); returns the path or None."""
    sw = ch.switch
    is_b = ch.originator is not None
    if is_b and not sw.xml_cdr_log_b:
        return None
    return write(ch, sw.xml_cdr_dir, file_name(ch, prefix_a=sw.xml_cdr_prefix_a and not is_b))


def write(ch, log_dir, name=None):
    os.makedirs(log_dir, exist_ok=True)
    lines = ['<?xml version="1.0"?>',
             f'<cdr core-uuid={quoteattr(ch.switch.core_uuid)} switchname={quoteattr(ch.switch.hostname)}>',
             "  <channel_data>",
             "    <state>CS_REPORTING</state>",
             f"    <direction>{escape(ch.direction)}</direction>",
             "    <state_number>11</state_number>",
             f"    <flags>{_FLAGS}</flags>",
             f"    <caps>{_CAPS}</caps>",
             "  </channel_data>"]
    lines += _call_stats(ch.variables)
    lines.append("  <variables>")
    for var, value in ch.variables.items():
        if var and value not in (None, "") and var.replace("_", "a").replace("-", "a").isalnum():
            lines.append(f"    <{var}>{escape(url_encode(str(value)))}</{var}>")
    lines += ["  </variables>", "  <app_log>"]
    for app, data, stamp in ch.app_log:
        lines.append(f"    <application app_name={quoteattr(app)} app_data={quoteattr(data)} "
                     f'app_stamp="{stamp}"></application>')
    lines.append("  </app_log>")
    profiles = [ch.profile_snapshot()] + list(ch.old_profiles)
    for index, profile in enumerate(profiles):
        lines += _callflow(ch, profile, partner=ch.other if index == 0 else None)
    lines += ["</cdr>", ""]
    path = os.path.join(log_dir, name or file_name(ch))
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
    return path


def _call_stats(v):
    if "rtp_audio_in_raw_bytes" not in v:
        return []
    out = ["  <call-stats>", "    <audio>", "      <inbound>"]
    out += [f"        <{k}>{escape(v.get('rtp_audio_in_' + k, '0'))}</{k}>" for k in _IN_STATS]
    out += ["      </inbound>", "      <outbound>"]
    out += [f"        <{k}>{escape(v.get('rtp_audio_out_' + k, '0'))}</{k}>" for k in _OUT_STATS]
    out += [f"        <rtcp_packet_count>{escape(v.get('rtp_audio_rtcp_packet_count', '0'))}</rtcp_packet_count>",
            f"        <rtcp_octet_count>{escape(v.get('rtp_audio_rtcp_octet_count', '0'))}</rtcp_octet_count>",
            "      </outbound>", "    </audio>", "  </call-stats>"]
    return out


def _callflow(ch, profile, partner=None):
    # an API-originated leg's profile has no dialplan and is a clone (fixture 11's a_3952...)
    attrs = f' dialplan="{escape(profile["dialplan"])}"' if profile["dialplan"] else ""
    attrs += f' unique-id="{_uuid.uuid4()}"'
    if not profile["dialplan"]:
        attrs += f' clone-of="{_uuid.uuid4()}"'
    out = [f'  <callflow{attrs} profile_index="{profile["profile_index"]}">']
    extension = profile["extension"]
    if extension is None and ch.app_log and not profile["dialplan"]:
        extension = (ch.app_log[0][0], "", [ch.app_log[0][:2]])      # `&park()`: extension "park"
    if extension is not None:
        name, number, apps = extension
        out.append(f"    <extension name={quoteattr(name or '')} number={quoteattr(number or '')}>")
        out += [f"      <application app_name={quoteattr(app)} app_data={quoteattr(data or '')}></application>"
                for app, data in apps]
        out.append("    </extension>")
    out.append("    <caller_profile>")
    out += _profile_fields(ch, profile, "      ")
    if partner is not None and ch.other_type == "originatee":
        theirs = partner.profile_snapshot()
        for block in ("origination", "originatee"):
            out.append(f"      <{block}>")
            out.append(f"        <{block}_caller_profile>")
            out += _profile_fields(partner, theirs, "          ")
            if block == "originatee":
                out.append("          <device_id></device_id>")      # as fixture 11's a_9669... has it
            out.append(f"        </{block}_caller_profile>")
            out.append(f"      </{block}>")
    out += ["    </caller_profile>", "    <times>"]
    times = profile["times"]
    for tag, key in _TIMES:
        out.append(f"      <{tag}>{int(times.get(key) or 0) if key else 0}</{tag}>")
    out += ["    </times>", "  </callflow>"]
    return out


def _profile_fields(ch, profile, indent):
    values = {"username": ch.username or "", "dialplan": profile["dialplan"], "ani": ch.orig_caller_id_number,
              "aniii": "", "network_addr": ch.network_addr or "", "uuid": ch.uuid, "source": ch.source,
              "chan_name": ch.name}
    values.update((k, profile[k]) for k in ("caller_id_name", "caller_id_number", "callee_id_name",
                                            "callee_id_number", "rdnis", "destination_number", "context"))
    # caller profile text is written as it is (XML-escaped), not URL-encoded like the variables
    return [f"{indent}<{k}>{escape(str(values[k] or ''))}</{k}>" for k in _PROFILE_FIELDS]
