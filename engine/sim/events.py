"""Events as the simulated switch emits them: core headers, ordering, lazy per-format encoding."""
import itertools
import time

from engine.sim import headers

# Channel-State-Number as switch_types.h numbers them.
STATE_NUMBERS = {"CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_SOFT_EXECUTE": 3, "CS_EXECUTE": 4,
                 "CS_EXCHANGE_MEDIA": 5, "CS_PARK": 6, "CS_CONSUME_MEDIA": 7, "CS_HIBERNATE": 8,
                 "CS_RESET": 9, "CS_HANGUP": 10, "CS_REPORTING": 11, "CS_DESTROY": 12, "CS_NONE": 13}

# Every event name mod_event_socket accepts in `event plain <names>` (a subset of switch_event.c's
# table big enough for what any client of ours asks for); anything else is `-ERR no keywords supplied`.
EVENT_NAMES = {
    "CUSTOM", "CLONE", "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE", "CHANNEL_CALLSTATE",
    "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE",
    "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
    "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_UNPARK",
    "CHANNEL_APPLICATION", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "API", "LOG", "INBOUND_CHAN",
    "OUTBOUND_CHAN", "STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH", "TALK", "NOTALK", "SESSION_CRASH",
    "MODULE_LOAD", "MODULE_UNLOAD", "DTMF", "MESSAGE", "PRESENCE_IN", "NOTIFY_IN", "PRESENCE_OUT",
    "PRESENCE_PROBE", "MESSAGE_WAITING", "MESSAGE_QUERY", "ROSTER", "CODEC", "BACKGROUND_JOB",
    "DETECTED_SPEECH", "DETECTED_TONE", "PRIVATE_COMMAND", "HEARTBEAT", "TRAP", "ADD_SCHEDULE",
    "DEL_SCHEDULE", "EXE_SCHEDULE", "RE_SCHEDULE", "RELOADXML", "NOTIFY", "PHONE_FEATURE",
    "PHONE_FEATURE_SUBSCRIBE", "SEND_MESSAGE", "RECV_MESSAGE", "REQUEST_PARAMS", "CHANNEL_DATA",
    "GENERAL", "COMMAND", "SESSION_HEARTBEAT", "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED",
    "SEND_INFO", "RECV_INFO", "RECV_RTCP_MESSAGE", "SEND_RTCP_MESSAGE", "CALL_SECURE", "NAT",
    "RECORD_START", "RECORD_STOP", "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "FAILURE",
    "SOCKET_DATA", "MEDIA_BUG_START", "MEDIA_BUG_STOP", "CONFERENCE_DATA_QUERY", "CONFERENCE_DATA",
    "CALL_SETUP_REQ", "CALL_SETUP_RESULT", "CALL_DETAIL", "DEVICE_STATE", "TEXT", "SHUTDOWN_REQUESTED",
    "ALL"}


def now_us():
    return int(time.time() * 1_000_000)


def date_fields(us):
    secs = us / 1_000_000
    return (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(secs)),
            time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(secs)))


class SimEvent:
    """One emitted event; encoded once per format, and only if some listener wants it."""

    __slots__ = ("name", "subclass", "uuid", "pairs", "body", "_plain", "_json")

    def __init__(self, name, subclass, uuid, pairs, body=""):
        self.name = name
        self.subclass = subclass
        self.uuid = uuid
        self.pairs = pairs
        self.body = body
        self._plain = None
        self._json = None

    def plain(self):
        if self._plain is None:
            self._plain = headers.encode_plain(self.pairs, self.body)
        return self._plain

    def json(self):
        if self._json is None:
            self._json = headers.encode_json(self.pairs, self.body)
        return self._json

    def encoded(self, fmt):
        return self.json() if fmt == "json" else self.plain()

    def get(self, name, default=None):
        # the last occurrence wins, as a client reads a repeated header (a consumed broadcast
        # carries `Event-Name: COMMAND` and then `Event-Name: PRIVATE_COMMAND`)
        for key, value in reversed(self.pairs):
            if key == name:
                return value
        return default


class EventFactory:
    """Fills the core block every event starts with (FreeSWITCH-Hostname ... Event-Sequence)."""

    def __init__(self, core_uuid, hostname, ipv4="127.0.0.1", ipv6="::1"):
        self.core_uuid = core_uuid
        self.hostname = hostname
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self._seq = itertools.count(1)

    def core(self, name, subclass=""):
        us = now_us()
        local, gmt = date_fields(us)
        key = headers.event_key(name, subclass)
        tpl = headers.templates().get(key) or {}
        calling = tpl.get("calling") or ["switch_event.c", "switch_event_fire", "1"]
        fields = {"Event-Name": name, "Core-UUID": self.core_uuid,
                  "FreeSWITCH-Hostname": self.hostname, "FreeSWITCH-Switchname": self.hostname,
                  "FreeSWITCH-IPv4": self.ipv4, "FreeSWITCH-IPv6": self.ipv6,
                  "Event-Date-Local": local, "Event-Date-GMT": gmt, "Event-Date-Timestamp": str(us),
                  "Event-Calling-File": calling[0], "Event-Calling-Function": calling[1],
                  "Event-Calling-Line-Number": calling[2], "Event-Sequence": str(next(self._seq))}
        if subclass:
            fields["Event-Subclass"] = subclass
        return fields

    def make(self, name, fields=None, variables=(), body="", subclass="", uuid=None, prefix=()):
        """`prefix`: headers the event already had before the switch fired it (a private event
        fired as PRIVATE_COMMAND keeps its own headers first, see Switch.private_message)."""
        all_fields = self.core(name, subclass)
        if fields:
            all_fields.update(fields)
        pairs = headers.order_headers(headers.event_key(name, subclass), all_fields, variables)
        if prefix:
            pairs = list(prefix) + pairs
        return SimEvent(name, subclass, uuid or all_fields.get("Unique-ID"), pairs, body)
