"""`api` commands of the simulated switch, with the reply texts of the real one (fixtures 01-06)."""
import json
import logging
import re
import time

import gevent


log = logging.getLogger("hotline.sim.api")

NO_CHANNEL = "-ERR No such channel!\n"
COMMANDS = {}
SHOW_CHANNEL_COLUMNS = [
    "uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
    "ip_addr", "dest", "application", "application_data", "dialplan", "context", "read_codec",
    "read_rate", "read_bit_rate", "write_codec", "write_rate", "write_bit_rate", "secure",
    "hostname", "presence_id", "presence_data", "accountcode", "callstate", "callee_name",
    "callee_num", "callee_direction", "call_uuid", "sent_callee_name", "sent_callee_num",
    "initial_cid_name", "initial_cid_num", "initial_ip_addr", "initial_dest", "initial_dialplan",
    "initial_context"]
SHOW_CALL_A = ["uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
               "ip_addr", "dest", "presence_id", "presence_data", "accountcode", "callstate",
               "callee_name", "callee_num", "callee_direction", "call_uuid", "hostname",
               "sent_callee_name", "sent_callee_num"]
SHOW_CALL_B = ["uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
               "ip_addr", "dest", "presence_id", "presence_data", "accountcode", "callstate",
               "callee_name", "callee_num", "callee_direction", "sent_callee_name", "sent_callee_num"]


def command(name):
    def register(fn):
        COMMANDS[name] = fn
        return fn
    return register


def run(switch, line):
    line = line.strip()
    cmd, _, arg = line.partition(" ")
    arg = arg.strip()
    fn = COMMANDS.get(cmd)
    if fn is None:
        out = f"-ERR {cmd} Command not found!\n"
    else:
        try:
            out = fn(switch, arg)
        except Exception as exc:              # a bad argument must never take the switch down
            log.exception("api %s failed", line[:200])
            out = f"-ERR {exc}\n"
    switch.emit("API", {"API-Command": cmd, "API-Command-Argument": arg} if arg else {"API-Command": cmd})
    return out


def uptime_text(ms):
    secs, ms = divmod(ms, 1000)
    mins, secs = divmod(secs, 60)
    hours, mins = divmod(mins, 60)
    days, hours = divmod(hours, 24)
    years, days = divmod(days, 365)
    return (f"{years} years, {days} days, {hours} hours, {mins} minutes, {secs} seconds, "
            f"{ms} milliseconds, 0 microseconds")


def _channel(switch, uuid):
    return switch.channels.get(uuid)


# --- core -------------------------------------------------------------------------------------------
@command("status")
def _status(switch, arg):
    up_ms = int((time.time() - switch.started_at) * 1000)
    n = len(switch.channels)
    return (f"UP {uptime_text(up_ms)}\nFreeSWITCH (Version 1.11.3-dev  64bit) is ready\n"
            f"{switch.sessions_since_startup} session(s) since startup\n"
            f"{n} session(s) - peak {switch.peak_sessions}, last 5min {switch.peak_sessions} \n"
            f"0 session(s) per Sec out of max 30, peak 0, last 5min 0 \n"
            f"{switch.max_sessions} session(s) max\nmin idle cpu 0.00/95.00\n"
            f"Current Stack Size/Max 240K/8192K\n")


@command("version")
def _version(switch, arg):
    return "FreeSWITCH Version 1.11.3-dev~64bit ( 64bit)\n"


@command("log")
def _log(switch, arg):
    # mod_commands `log <level> <message>`: the line goes to the switch log; the reply is +OK.
    level, _, message = arg.partition(" ")
    log.info("switch log [%s] %s", level, message[:500])
    return "+OK\n"


@command("hostname")
def _hostname(switch, arg):
    return switch.hostname


@command("global_getvar")
def _global_getvar(switch, arg):
    return switch.global_vars.get(arg, "")


@command("global_setvar")
def _global_setvar(switch, arg):
    name, _, value = arg.partition("=")
    switch.global_vars[name.strip()] = value
    return "+OK\n"


def _row(switch, ch):
    t = time.localtime(ch.times["created"] / 1e6)
    codec, rate = ch.codec or ("", "")
    inbound = ch.direction == "inbound"
    return {"uuid": ch.uuid, "direction": ch.direction, "created": time.strftime("%Y-%m-%d %H:%M:%S", t),
            "created_epoch": str(ch.times["created"] // 1_000_000), "name": ch.name, "state": ch.state,
            "cid_name": ch.caller_id_name, "cid_num": ch.caller_id_number,
            "ip_addr": ch.network_addr if inbound else "", "dest": ch.destination_number,
            "application": ch.current_app or "", "application_data": ch.variables.get("current_application_data", ""),
            "dialplan": ch.dialplan, "context": ch.context, "read_codec": codec, "read_rate": rate,
            "read_bit_rate": "0" if codec else "", "write_codec": codec, "write_rate": rate,
            "write_bit_rate": "0" if codec else "", "secure": "", "hostname": switch.hostname,
            "presence_id": "", "presence_data": "", "accountcode": "", "callstate": ch.call_state,
            "callee_name": ch.callee_id_name, "callee_num": ch.callee_id_number,
            "callee_direction": "RECV" if ch.callee_id_number else "",
            "call_uuid": ch.uuid if not inbound or ch.bridged_to else "",
            "sent_callee_name": "", "sent_callee_num": "", "initial_cid_name": ch.orig_caller_id_name,
            "initial_cid_num": ch.orig_caller_id_number, "initial_ip_addr": ch.network_addr if inbound else "",
            "initial_dest": ch.destination_number, "initial_dialplan": ch.dialplan,
            "initial_context": ch.context}


@command("show")
def _show(switch, arg):
    words = arg.split()
    what = words[0] if words else ""
    as_json = words[-2:] == ["as", "json"]
    chans = sorted(switch.channels.values(), key=lambda c: c.times["created"])
    if what == "channels" and words[1:2] == ["count"]:
        return f"\n{len(chans)} total.\n"
    if what == "channels":
        rows = [_row(switch, c) for c in chans]
        cols = SHOW_CHANNEL_COLUMNS
    elif what == "calls":
        rows, seen = [], set()
        for c in chans:
            if c.uuid in seen:
                continue
            seen.add(c.uuid)
            a = _row(switch, c)
            row = {k: a[k] for k in SHOW_CALL_A}
            b = switch.channels.get(c.bridged_to) if c.bridged_to else None
            if b is not None:
                seen.add(b.uuid)
            brow = _row(switch, b) if b is not None else {}
            for k in SHOW_CALL_B:
                row["b_" + k] = brow.get(k, "")
            row["call_created_epoch"] = str(c.times["bridged"] // 1_000_000) if b is not None else ""
            rows.append(row)
        cols = list(rows[0]) if rows else SHOW_CALL_A + ["b_" + k for k in SHOW_CALL_B] + ["call_created_epoch"]
    else:
        return f"-ERR Cannot find command {what}\n" if what else "-USAGE: show ...\n"
    if as_json:
        if not rows:
            return json.dumps({"row_count": 0}) + "\n"
        return json.dumps({"row_count": len(rows), "rows": rows}, ensure_ascii=False,
                          separators=(",", ":")) + "\n"
    lines = [",".join(cols)] + [",".join(r.get(k, "") for k in cols) for r in rows]
    return "\n".join(lines) + f"\n\n{len(rows)} total.\n"


# --- uuid_* ------------------------------------------------------------------------------------------
@command("uuid_exists")
def _uuid_exists(switch, arg):
    return "true" if arg.split()[:1] and arg.split()[0] in switch.channels else "false"


@command("uuid_dump")
def _uuid_dump(switch, arg):
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    pairs = switch.channel_data(ch, dump=True)
    if words[1:2] == ["json"]:
        return json.dumps({k: str(v) for k, v in pairs}, ensure_ascii=False, separators=(",", ":"))
    from urllib.parse import quote
    from engine.sim.headers import _SAFE
    return "".join(f"{k}: {quote(str(v), safe=_SAFE)}\n" for k, v in pairs) + "\n"


# `sofia status` columns are 25, 7 and 42 wide, tab-separated (fixture 06). `sofia status profile
# <name>` of the vanilla profiles, as fixture 06 shows `external` (sofia.c
# writes each line as "%-17s\t%s"); `internal` follows the vanilla internal.xml and is not captured.
SOFIA_PROFILES = {
    "external": {"port": 5080, "context": "public", "realm": "auto_to", "pres_hosts": ""},
    "internal": {"port": 5060, "context": "public", "realm": "auto_from", "pres_hosts": "127.0.0.1,127.0.0.1"},
}
SOFIA_RULE = "=" * 97


def _sofia_counts(switch, profile):
    """(channels up, calls in, calls out) on a profile: `RUNNING (n)` and CALLS-IN / CALLS-OUT."""
    marker = f"sofia/{profile}/"
    up = sum(1 for c in switch.channels.values() if c.name.startswith(marker))
    calls = switch.sofia_calls.get(profile, {})
    return up, calls.get("inbound", 0), calls.get("outbound", 0)


@command("sofia")
def _sofia(switch, arg):
    words = arg.split()
    if words[:1] != ["status"]:
        return "-ERR Usage: sofia status\n"
    if words[1:2] == ["profile"] and len(words) > 2:
        return _sofia_profile(switch, words[2])
    rows = [("127.0.0.1", "alias", "internal", "ALIASED")]
    for name in ("external", "internal"):
        port = SOFIA_PROFILES[name]["port"]
        rows.append((name, "profile", f"sip:mod_sofia@127.0.0.1:{port}",
                     f"RUNNING ({_sofia_counts(switch, name)[0]})"))
    lines = [f"{'Name':>25}\t{'Type':>7}\t{'Data':>42}\tState", SOFIA_RULE]
    lines += [f"{a:>25}\t{b:>7}\t{c:>42}\t{d}" for a, b, c, d in rows]
    lines += [SOFIA_RULE, "2 profiles 1 alias"]
    return "\n".join(lines) + "\n"


def _sofia_profile(switch, name):
    profile = SOFIA_PROFILES.get(name)
    if profile is None:
        return "Invalid Profile!\n"
    _, calls_in, calls_out = _sofia_counts(switch, name)
    url = f"sip:mod_sofia@127.0.0.1:{profile['port']}"
    registrations = len(switch.endpoints) if name == "internal" else 0
    rows = [("Name", name), ("Domain Name", "N/A"), ("Auto-NAT", "false"), ("DBName", f"sofia_reg_{name}"),
            ("Pres Hosts", profile["pres_hosts"]), ("Dialplan", "XML"), ("Context", profile["context"]),
            ("Challenge Realm", profile["realm"]), ("RTP-IP", "127.0.0.1"), ("Ext-RTP-IP", "127.0.0.1"),
            ("SIP-IP", "127.0.0.1"), ("Ext-SIP-IP", "127.0.0.1"), ("URL", url),
            ("BIND-URL", f"{url};maddr=127.0.0.1;transport=udp,tcp"), ("HOLD-MUSIC", "local_stream://moh"),
            ("OUTBOUND-PROXY", "N/A"), ("CODECS IN", "OPUS,G722,PCMU,PCMA,H264,VP8"),
            ("CODECS OUT", "OPUS,G722,PCMU,PCMA,H264,VP8"), ("TEL-EVENT", "101"), ("DTMF-MODE", "rfc2833"),
            ("CNG", "13"), ("SESSION-TO", "0"), ("MAX-DIALOG", "0"), ("MAX-RECV-RPS", "1000"),
            ("NOMEDIA", "false"), ("LATE-NEG", "true"), ("PROXY-MEDIA", "false"), ("AGGRESSIVENAT", "false"),
            ("CALLS-IN", calls_in), ("FAILED-CALLS-IN", 0), ("CALLS-OUT", calls_out),
            ("FAILED-CALLS-OUT", 0), ("REGISTRATIONS", registrations)]
    return SOFIA_RULE + "\n" + "".join(f"{key:<17}\t{value}\n" for key, value in rows)


@command("module_exists")
def _module_exists(switch, arg):
    """mod_commands.c module_exists_function: "true" / "false" (no newline), nothing for no name."""
    if not arg:
        return ""
    return "true" if arg in switch.modules else "false"


@command("xml_locate")
def _xml_locate(switch, arg):
    """mod_commands.c xml_locate_function: `xml_locate <section> <tag> <attr> <value>` answers the
    element's XML (switch_xml_toxml), "can't find anything\n" when switch_xml_locate finds nothing,
    "-ERR bad args\n" for other than 1 or 4 words. The simulator holds the dialplan section only."""
    words = arg.split(" ") if arg else []
    if len(words) not in (1, 4):
        return "-ERR bad args\n"
    if words[:2] == ["dialplan", "context"] and len(words) == 4 and words[2] == "name":
        element = switch.dialplan.context_xml.get(words[3])
        if element is not None:
            import xml.etree.ElementTree as ET
            return ET.tostring(element, encoding="unicode").strip() + "\n"
    return "can't find anything\n"


@command("reloadxml")
def _reloadxml(switch, arg):
    return "+OK [Success]\n"


@command("uuid_getvar")
def _uuid_getvar(switch, arg):
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    if len(words) < 2:
        return "-ERR Usage: uuid_getvar <uuid> <var>\n"
    value = ch.variables.get(words[1])
    return "_undef_" if value is None else value


@command("uuid_setvar")
def _uuid_setvar(switch, arg):
    words = arg.split(" ", 2)
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    if len(words) < 2:
        return "-ERR Usage: uuid_setvar <uuid> <var> [value]\n"
    ch.set_var(words[1], words[2] if len(words) > 2 else None)
    return "+OK\n"


@command("uuid_kill")
def _uuid_kill(switch, arg):
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None or not ch.alive:
        return NO_CHANNEL
    ch.kill(words[1] if len(words) > 1 else "NORMAL_CLEARING")
    return "+OK\n"


@command("uuid_answer")
def _uuid_answer(switch, arg):
    ch = _channel(switch, arg.split()[0]) if arg.split() else None
    if ch is None:
        return NO_CHANNEL
    ch.answer()
    return "+OK\n"


@command("uuid_break")
def _uuid_break(switch, arg):
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    ch.request_break(everything="all" in words[1:])
    return "+OK\n"


FILEMAN_STOP_SECONDS = 0.26    # fixture 12's header: PLAYBACK_STOP ~260 ms after `uuid_fileman stop`


@command("uuid_fileman")
def _uuid_fileman(switch, arg):
    """`uuid_fileman <uuid> <cmd>` on the file the channel is playing (switch_ivr_process_fh,
    switch_ivr.c): `pause` TOGGLES SWITCH_FILE_PAUSE (a second pause resumes; there is no `resume`
    verb there, so `resume` changes nothing), `stop` sets SWITCH_FILE_DONE and the playback ends
    with Playback-Status `done`. The answer is `+OK` (fixture 12, pause of a running playback);
    with no playback running there is no file handle and nothing happens: the answer does not
    tell, so the engine must know itself whether a playback runs."""
    words = arg.split()
    if len(words) < 2:
        return "-USAGE: <uuid> <cmd>:<val>\n"
    ch = _channel(switch, words[0])
    if ch is None:
        return NO_CHANNEL
    fh = ch.file_handle
    if fh is not None:
        if words[1] == "pause":
            fh.paused = not fh.paused
            ch.wake()
        elif words[1] == "stop":
            def stop():
                fh.done = True
                ch.wake()
            switch.spawn_later(FILEMAN_STOP_SECONDS, stop)
    return "+OK\n"


@command("uuid_send_dtmf")
def _uuid_send_dtmf(switch, arg):
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    if len(words) < 2:
        return "-USAGE: <uuid> <dtmf_data>\n"
    digits, _, dur = words[1].partition("@")
    duration_ms = int(dur) if dur.isdigit() else 250
    target = ch.sip_peer if ch.sip_peer is not None else None

    def send():
        # RFC2833 to the far end: the first digit lands ~60 ms later, then one every
        # duration + inter-digit gap (fixture 01: 420 ms apart with the default 250 ms)
        for i, d in enumerate(digits):
            gevent.sleep(0.06 if i == 0 else (duration_ms + 170) / 1000.0)
            if target is not None and target.alive:
                target.receive_dtmf(d, duration=2880 if not dur else duration_ms * 8)
    switch.spawn(send)
    return f"+OK {ch.uuid} sent DTMF {words[1]}.\n"


@command("uuid_recv_dtmf")
def _uuid_recv_dtmf(switch, arg):
    """Digits queued as if the channel's phone had sent them (mod_commands uuid_recv_dtmf)."""
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    if len(words) < 2:
        return "-USAGE: <uuid> <dtmf_data>\n"
    for d in words[1].split("@")[0]:
        ch.receive_dtmf(d, source="APP")
    return f"+OK {ch.uuid} received DTMF {words[1]}.\n"      # fixtures 09, 09b


@command("uuid_hold")
def _uuid_hold(switch, arg):
    """`uuid_hold [off|toggle] <uuid>` (switch_ivr_hold / switch_ivr_unhold).

    Hold: CALLSTATE HELD and CHANNEL_HOLD on the leg; its phone is re-INVITEd sendonly and sends
    no RTP, so no DTMF (Channel.press; fixture 10); the leg's `hold_music` is broadcast, looping,
    to its partner as a queued private event (switch_ivr_broadcast, SMF_LOOP) - which waits behind
    an application run with event-lock, e.g. the caller's `bridge` (fixture 08 A).
    Unhold: CALLSTATE UNHELD then ACTIVE; a broadcast running on the partner is stopped
    (switch_channel_stop_broadcast), one still queued is NOT removed and runs later (08 A);
    then CHANNEL_UNHOLD (fixture 10)."""
    words = arg.split()
    mode = "on"
    if words and words[0] in ("off", "toggle"):
        mode = words.pop(0)
    ch = _channel(switch, words[0]) if words else None
    if ch is None or not ch.alive:
        return "-ERR Operation Failed\n"
    if mode == "toggle":
        mode = "off" if ch.held else "on"
    partner = switch.channels.get(ch.variables.get("signal_bond") or ch.bridged_to or "")
    if mode == "on" and not ch.held:
        ch.held = True
        ch.set_callstate("HELD")
        ch.emit("CHANNEL_HOLD")
        music = ch.variables.get("hold_music")
        # switch_ivr_hold: no broadcast when the stream is "silence"
        if music and music != "silence" and partner is not None and partner.alive:
            partner.queue_message(switch.private_message("playback", music, loop=True))
    elif mode == "off" and ch.held:
        ch.held = False
        ch.set_callstate("UNHELD")
        ch.set_callstate("ACTIVE")
        if partner is not None:
            partner.stop_broadcast()
        ch.emit("CHANNEL_UNHOLD")
    return "+OK Success\n"


@command("uuid_broadcast")
def _uuid_broadcast(switch, arg):
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    if len(words) < 2:
        return "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
    leg = words[2] if len(words) > 2 else "aleg"
    targets = []
    if leg in ("aleg", "both"):
        targets.append(ch)
    if leg in ("bleg", "both") and ch.bridged_to in switch.channels:
        targets.append(switch.channels[ch.bridged_to])
    path = words[1]
    app, _, app_arg = path.partition("::")
    for t in targets:
        if app_arg:
            t.queue_message(switch.private_message(app, app_arg.replace("::", " ")))
        else:
            t.queue_message(switch.private_message("playback", path))
    return "+OK Message sent\n"


@command("uuid_transfer")
def _uuid_transfer(switch, arg):
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    rest = [w for w in words[1:] if w not in ("-bleg", "-both")]
    if not rest:
        return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
    context = rest[2] if len(rest) > 2 else ch.context
    targets = [ch]
    if "-both" in words and ch.bridged_to in switch.channels:
        targets.append(switch.channels[ch.bridged_to])
    if "-bleg" in words:
        targets = [switch.channels[ch.bridged_to]] if ch.bridged_to in switch.channels else []
    for t in targets:
        t.transfer(rest[0], context)
    return "+OK\n"


@command("uuid_park")
def _uuid_park(switch, arg):
    """`uuid_park <uuid>` (mod_commands, switch_ivr_park_session): out of what it runs (a bridge:
    its partner is hung up), into CS_PARK; a parked leg still delivers its phone's DTMF (fixture 10)."""
    from engine.sim.channel import PARK
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None or not ch.alive:
        return NO_CHANNEL
    if not ch.parked:
        ch.transfer_to = (PARK, None, None)
        ch.wake()
    return "+OK\n"


@command("uuid_set_media_stats")
def _uuid_set_media_stats(switch, arg):
    """Copies the RTP statistics into channel variables (fixture 10's reply); the simulator keeps
    no RTP counters, so only the reply is the switch's."""
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    return "+OK:\n"


@command("uuid_record")
def _uuid_record(switch, arg):
    words = arg.split()
    ch = _channel(switch, words[0]) if words else None
    if ch is None:
        return NO_CHANNEL
    if len(words) < 3:
        return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>]\n"
    action, path = words[1], words[2]
    if action == "start":
        limit = int(words[3]) if len(words) > 3 and words[3].isdigit() else None
        switch.record_start(ch, path, limit)
        return "+OK Success\n"
    if action == "stop":
        if path == "all":
            for p in list(ch.media):
                switch.record_stop(ch, p, "success-maxtime")
        elif not switch.record_stop(ch, path, "success-maxtime"):
            return "-ERR Cannot Execute\n"
        return "+OK Success\n"
    if action in ("mask", "unmask"):
        if path not in ch.media:
            return "-ERR Cannot Execute\n"
        ch.record_masked = action == "mask"       # the recording gets silence while masked
        return "+OK Success\n"
    return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>]\n"


@command("uuid_bridge")
def _uuid_bridge(switch, arg):
    from engine.sim import bridge
    words = arg.split()
    if len(words) < 2:
        return "-USAGE: <uuid> <other_uuid>\n"
    a, b = _channel(switch, words[0]), _channel(switch, words[1])
    if a is None or b is None:
        return f"-ERR Invalid uuid {words[0] if a is None else words[1]}\n"
    bridge.uuid_bridge(switch, a, b)
    return f"+OK {b.uuid}\n"


@command("conference")
def _conference(switch, arg):
    return switch.conferences.api(arg)


# --- originate -----------------------------------------------------------------------------------------
def split_vars(text):
    """`{a=1,b='x y'}rest` -> ({'a': '1', 'b': 'x y'}, 'rest')."""
    out = {}
    if not text.startswith("{"):
        return out, text
    depth, quote, i = 0, False, 0
    for i, c in enumerate(text):
        if c == "'":
            quote = not quote
        elif not quote and c == "{":
            depth += 1
        elif not quote and c == "}":
            depth -= 1
            if depth == 0:
                break
    body, rest = text[1:i], text[i + 1:]
    item, quote, escaped = "", False, False
    items = []
    for c in body:
        if escaped:                       # `\,` is a comma inside a value
            item += c if c == "," else "\\" + c
            escaped = False
            continue
        if c == "\\":
            escaped = True
            continue
        if c == "'":
            quote = not quote
            continue
        if c == "," and not quote:
            items.append(item)
            item = ""
            continue
        item += c
    items.append(item)
    for it in items:
        k, sep, v = it.partition("=")
        if sep and k.strip():
            out[k.strip()] = v
    return out, rest


def _split_args(text):
    """Split at spaces outside {...} and quotes (the dial string keeps its var list)."""
    args, cur, depth, quote = [], "", 0, False
    for c in text:
        if c == "'":
            quote = not quote
        if not quote:
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
        if c == " " and depth == 0 and not quote:
            if cur:
                args.append(cur)
            cur = ""
            continue
        cur += c
    if cur:
        args.append(cur)
    return args


def _unquote(arg):
    """mod_commands splits the originate line with switch_separate_string, whose
    cleanup_separated_string (switch_utils.c) drops a quote that has a partner and keeps the
    spaces between them: `'&socket(127.0.0.1:8084 async full)'` is the app with its argument."""
    out, inside = [], False
    for i, c in enumerate(arg):
        if c == "'" and (inside or "'" in arg[i + 1:]):
            inside = not inside
            continue
        out.append(c)
    return "".join(out)


@command("originate")
def _originate(switch, arg):
    args = _split_args(arg)
    if len(args) < 2:
        return "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
    variables, endpoint = split_vars(args[0])
    target = _unquote(args[1])
    dialplan = args[2] if len(args) > 2 else "XML"
    context = args[3] if len(args) > 3 else "default"
    if len(args) > 4:
        variables.setdefault("origination_caller_id_name", args[4])
    if len(args) > 5:
        variables.setdefault("origination_caller_id_number", args[5])
    timeout = int(args[6]) if len(args) > 6 and args[6].isdigit() else \
        int(variables.get("originate_timeout", "60") or 60)
    from engine.sim import originate
    ok, result = originate.originate(switch, endpoint, variables, timeout)
    if not ok:
        return f"-ERR {result}\n"
    a = result
    m = re.match(r"^&([A-Za-z0-9_]+)(?:\((.*)\))?$", target)
    if m:
        # mod_commands gives the answered leg its `&app()` as caller extension before it
        # answers +OK: the flip's CALL_UPDATE comes before the API event (fixture 11 #81-#82)
        a.sort_cid()
        a.start(apps=[(m.group(1), m.group(2) or "")], outgoing=True)
    else:
        a.destination_number = target
        a.context = context
        a.dialplan = dialplan
        a.start(apps=None, outgoing=True)
    return f"+OK {a.uuid}\n"
