"""Which audio codec each simulated leg negotiates, and what eavesdrop does when rates differ.

How the switch chooses (the simulator follows it, never kinder):
- An inbound SIP leg: the far end offers its codecs; sofia keeps the first one the profile's
  `inbound-codec-prefs` also lists (`inbound-codec-negotiation` generous, the vanilla and our
  setting: the caller's order). Nothing in common: the call is refused, INCOMPATIBLE_DESTINATION.
- An outbound leg offers, in this order of precedence (switch_core_media.c,
  switch_core_media_prepare_codecs): `absolute_codec_string`; else, for the B leg of a `bridge`,
  only the originator's negotiated codec (FREESWITCH.md "Codecs when bridging": an OPUS caller
  bridged to a G.711-only phone fails 488 INCOMPATIBLE_DESTINATION on the vanilla configuration);
  else `codec_string`; else the profile's `outbound-codec-prefs`. The phone answers with the first
  offered codec it supports, or 488 (INCOMPATIBLE_DESTINATION).
- `user/<ext>` expands the directory's `dial-string`; its `{...}` variables replace the same
  variables of the originate (switch_ivr_originate.c: the dial string's `{}` block is applied with
  switch_event_del_header + add over the caller's `ovars`), so a directory that pins
  `absolute_codec_string` wins over the engine's.
Without a rendered configuration the switch is the vanilla one: every profile prefers
OPUS,G722,PCMU,PCMA (`rtp_use_codec_string` in every fixture) and the directory pins nothing.
`CodecConfig.from_conf_dir` reads ours (vars.xml, sofia.conf.xml, directory/*.xml).

Eavesdrop mixes the eavesdropper's frames byte for byte into the target's (switch_ivr_async.c,
switch_ivr_eavesdrop_session: the eavesdropper's read frames go into ep->r_buffer/w_buffer with
switch_buffer_zwrite, and eavesdrop_callback merges them with switch_merge_sln into the target's
frames; nothing resamples). The eavesdropper reads L16 at its own rate (fixture 09b: CODEC L16/48000
on the OPUS supervisor leg while the agent leg is PCMA/8000), so with another rate than the target's
the supervisor is nearly silent in whisper and barge: fixture 09b's levels, below.
"""
import re
import xml.etree.ElementTree as ET
from pathlib import Path

# iananame and actual sample rate as the switch reports them in read_codec / read_rate
# (G722 is 8000 on the wire but 16000 samples a second: read_rate 16000).
CODECS = {"PCMA": ("PCMA", "8000", "64000"), "PCMU": ("PCMU", "8000", "64000"),
          "G722": ("G722", "16000", "64000"), "OPUS": ("opus", "48000", "0")}
RTP_PT = {"PCMA": "8", "PCMU": "0", "G722": "9", "OPUS": "102"}

VANILLA_PREFS = ("OPUS", "G722", "PCMU", "PCMA")      # vanilla vars.xml global/outbound_codec_prefs
# What a simulated phone or trunk caller offers unless told otherwise: the capture rig's softphone
# (baresip: opus, PCMU, PCMA in its SDP, fixture 10) and the loopback caller legs (fixture 01).
SOFTPHONE = ("OPUS", "PCMU", "PCMA")
CALLER = VANILLA_PREFS
DESK_PHONE = ("PCMA", "PCMU")                           # a G.711-only desk phone


def parse(codec_string):
    """'PCMA,opus@48000h@20i,H264' -> ('PCMA', 'OPUS'): audio codec names we know, in order."""
    out = []
    for item in str(codec_string or "").split(","):
        name = item.strip().split("@")[0].upper()
        if name in CODECS and name not in out:
            out.append(name)
    return tuple(out)


def codec_tuple(name):
    """('PCMA', '8000') as Channel.codec holds it."""
    iana, rate, _ = CODECS[name]
    return iana, rate


def first_common(preferred, other):
    """The first codec of `preferred` that `other` also has, or None."""
    for name in preferred:
        if name in other:
            return name
    return None


class CodecConfig:
    """The codec settings of the switch's configuration that decide negotiation."""

    def __init__(self, inbound=None, outbound=None, directory_absolute=None):
        self.inbound = dict(inbound or {})          # profile -> inbound-codec-prefs
        self.outbound = dict(outbound or {})        # profile -> outbound-codec-prefs
        self.directory_absolute = directory_absolute  # absolute_codec_string of the user dial-string

    def inbound_prefs(self, profile):
        return self.inbound.get(profile) or VANILLA_PREFS

    def outbound_prefs(self, profile):
        return self.outbound.get(profile) or VANILLA_PREFS

    @classmethod
    def from_conf_dir(cls, conf_dir):
        """Read a rendered configuration (fsconf.render's layout). Missing files keep vanilla."""
        conf = Path(conf_dir)
        variables = {}
        vars_xml = conf / "vars.xml"
        if vars_xml.exists():
            variables.update(re.findall(r'cmd="set"\s+data="([^"=]+)=([^"]*)"', vars_xml.read_text("utf-8")))

        def expand(value):
            return re.sub(r"\$\$\{([^}]+)\}", lambda m: variables.get(m.group(1), ""), value or "")

        inbound, outbound = {}, {}
        sofia = conf / "autoload_configs" / "sofia.conf.xml"
        if sofia.exists():
            for profile in ET.parse(sofia).getroot().iter("profile"):
                params = {p.get("name"): expand(p.get("value")) for p in profile.iter("param")}
                name = profile.get("name")
                if params.get("inbound-codec-prefs"):
                    inbound[name] = parse(params["inbound-codec-prefs"])
                if params.get("outbound-codec-prefs"):
                    outbound[name] = parse(params["outbound-codec-prefs"])
        absolute = None
        for path in sorted((conf / "directory").glob("*.xml")) if (conf / "directory").is_dir() else ():
            for param in ET.parse(path).getroot().iter("param"):
                if param.get("name") == "dial-string":
                    absolute = dial_string_codecs(expand(param.get("value"))) or absolute
        return cls(inbound, outbound, absolute)


def dial_string_codecs(dial_string):
    """absolute_codec_string of a `{^^:a=b:c=d}...` / `{a=b,c=d}...` dial-string prefix, or None."""
    text = dial_string or ""
    if not text.startswith("{"):
        return None
    depth, end = 0, None
    for i, c in enumerate(text):            # `${var}` inside the block nests braces
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth == 0:
            end = i
            break
    if end is None:
        return None
    block, sep = text[1:end], ","
    if block.startswith("^^") and len(block) > 2:
        block, sep = block[3:], block[2]
    for pair in block.split(sep):
        name, _, value = pair.partition("=")
        if name.strip() == "absolute_codec_string":
            return parse(value.replace(sep, ","))
    return None


def outbound_offer(config, variables, kind, profile, originator=None):
    """The codecs an outbound leg offers (see the module docstring for the precedence)."""
    if kind == "user" and config.directory_absolute:
        return config.directory_absolute
    if variables.get("absolute_codec_string"):
        return parse(variables["absolute_codec_string"])
    if originator is not None and originator.codec:
        name = originator.codec[0].upper()
        return (name,) if name in CODECS else config.outbound_prefs(profile)
    if variables.get("codec_string"):
        return parse(variables["codec_string"])
    return config.outbound_prefs(profile)


def push_l16(ch):
    """A media bug (eavesdrop, conference) makes the leg read raw L16 at its own rate:
    switch_core_session_set_read_codec sends CODEC and rewrites the `read_codec` / `read_rate`
    variables (switch_core_codec.c); `original_read_codec` keeps the negotiated codec (fixtures 03
    and 09b show variable_read_codec L16 next to variable_original_read_codec PCMA)."""
    rate = ch.codec[1] if ch.codec else "48000"
    ch.read_codec = ("L16", rate, str(int(rate) * 16))
    ch.set_var("read_codec", "L16")
    ch.set_var("read_rate", rate)
    ch.emit("CODEC", {"channel-read-codec-name": "L16", "channel-read-codec-rate": rate,
                      "channel-read-codec-bit-rate": ch.read_codec[2]})


def pop_l16(ch):
    """The media bug is gone: the negotiated read codec is back (even while hanging up)."""
    ch.read_codec = None
    if not ch.codec:
        return
    iana, rate = ch.codec
    ch.set_var("read_codec", iana)
    ch.set_var("read_rate", rate)
    ch.emit("CODEC", {"channel-read-codec-name": iana, "channel-read-codec-rate": rate,
                      "channel-read-codec-bit-rate": CODECS.get(iana.upper(), ("", "", "0"))[2]})


# --- eavesdrop ---------------------------------------------------------------------------------
# Level of the supervisor's tone at the target's phone (agent) and at its partner's (caller), per
# mode digit, with the eavesdropper at the target's rate (fixture 09, all OPUS/48000) and at
# another rate (fixture 09b, target PCMA/8000, eavesdropper OPUS/48000); the tone was sent at
# about -13 dBFS. Mode 1 (mix into what the target reads) was not measured: by
# switch_ivr_async.c it reaches the partner only, like barge does, at barge's level.
EAVESDROP_DBFS = {
    True: {"0": (-87.6, -89.9), "1": (-87.6, -13.3), "2": (-13.3, -83.4), "3": (-13.3, -13.3)},
    False: {"0": (-81.7, -74.7), "1": (-81.7, -68.4), "2": (-55.2, -70.7), "3": (-55.8, -68.4)},
}
HEARD_DBFS = -30.0          # louder than this, a person on that phone hears the supervisor
LISTENERS = {"0": (), "1": ("partner",), "2": ("target",), "3": ("target", "partner")}


def eavesdrop_mix(mode, rate, target_rate):
    """What one eavesdrop mode does to the supervisor's voice: levels at both phones, and whether
    everyone the mode is meant for hears it (`audible`; listen-only mode 0 is never audible)."""
    same = str(rate) == str(target_rate)
    target_dbfs, partner_dbfs = EAVESDROP_DBFS[same][mode]
    levels = {"target": target_dbfs, "partner": partner_dbfs}
    listeners = LISTENERS[mode]
    audible = bool(listeners) and all(levels[who] > HEARD_DBFS for who in listeners)
    return {"mode": mode, "rate": str(rate), "target_rate": str(target_rate),
            "target_phone_dbfs": target_dbfs, "partner_phone_dbfs": partner_dbfs, "audible": audible}
