"""Which modules the simulated switch has loaded and which local streams (music on hold) it plays.

A switch started without a configuration directory is the one the fixtures were captured on: the
vanilla modules.conf.xml (plus mod_xml_cdr, fixture 11) and no sound files, so every
`local_stream://` source is unknown (fixture 07 case D: `playback local_stream://moh` completes at
once with FILE NOT FOUND). With `conf_dir` (what `hotline fs-config render` wrote) the switch loads
exactly the modules of its modules.conf.xml and the streams of its local_stream.conf.xml.
"""
import os
import re
import xml.etree.ElementTree as ET

# freeswitch conf/vanilla/autoload_configs/modules.conf.xml, the modules it loads uncommented
VANILLA_MODULES = frozenset((
    "mod_console", "mod_logfile", "mod_enum", "mod_cdr_csv", "mod_event_socket", "mod_sofia",
    "mod_loopback", "mod_rtc", "mod_verto", "mod_signalwire", "mod_commands", "mod_conference",
    "mod_db", "mod_dptools", "mod_expr", "mod_fifo", "mod_hash", "mod_voicemail", "mod_esf",
    "mod_fsv", "mod_valet_parking", "mod_httapi", "mod_dialplan_xml", "mod_dialplan_asterisk",
    "mod_spandsp", "mod_g723_1", "mod_g729", "mod_amr", "mod_b64", "mod_opus", "mod_sndfile",
    "mod_native_file", "mod_png", "mod_local_stream", "mod_tone_stream", "mod_lua", "mod_say_en",
    "mod_xml_cdr"))

# the module that opens each kind of media source (the file interface registered for it)
SOURCE_MODULES = {"local_stream": "mod_local_stream", "tone_stream": "mod_tone_stream",
                  "silence_stream": "mod_tone_stream"}
FILE_MODULES = {".wav": "mod_sndfile", ".r8": "mod_native_file", ".r16": "mod_native_file",
                ".r32": "mod_native_file", ".r48": "mod_native_file"}

_PRE = re.compile(r"\$\$\{([A-Za-z0-9_.-]+)\}")


def read_modules(conf_dir):
    """The modules autoload_configs/modules.conf.xml loads (None if the file does not exist)."""
    path = os.path.join(conf_dir, "autoload_configs", "modules.conf.xml")
    if not os.path.isfile(path):
        return None
    root = ET.parse(path).getroot()
    return frozenset(el.get("module") for el in root.iter("load") if el.get("module"))


def read_local_streams(conf_dir, global_vars):
    """{stream name: directory} from autoload_configs/local_stream.conf.xml ({} without the file)."""
    path = os.path.join(conf_dir, "autoload_configs", "local_stream.conf.xml")
    if not os.path.isfile(path):
        return {}
    text = open(path, encoding="utf-8").read()
    text = _PRE.sub(lambda m: global_vars.get(m.group(1), ""), text)
    root = ET.fromstring(text)
    return {el.get("name"): el.get("path") for el in root.iter("directory")
            if el.get("name") and el.get("path")}


def module_for(source):
    """The module a playback of `source` needs, or None when the core plays it."""
    if "://" in source:
        return SOURCE_MODULES.get(source.split("://", 1)[0])
    return FILE_MODULES.get(os.path.splitext(source)[1].lower())


def stream_playable(streams, source):
    """mod_local_stream registers a source only while its thread runs, and the thread ends when it
    cannot open the directory ("Can't open directory", read_stream_thread in mod_local_stream.c):
    an unconfigured stream or one whose directory is missing is unknown -> FILE NOT FOUND. An
    existing but empty directory keeps the stream registered: it plays silence."""
    directory = streams.get(source[len("local_stream://"):])
    return bool(directory) and os.path.isdir(directory)
