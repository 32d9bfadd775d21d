"""Conferences (the mod_conference subset the hotline uses for three-way calls), fixture 03.

Members are channels running the `conference name@profile` app; CUSTOM `conference::maintenance`
events carry the conference block, the member's channel block and its flags, then `Action`.
"""
import json
import uuid as _uuid

from engine.sim import codecs
from engine.sim.events import now_us

SUBCLASS = "conference::maintenance"
ENTER_SOUND = "tone_stream://%(200,0,500,600,700)"
EXIT_SOUND = "tone_stream://%(500,0,300,200,100,50,25)"
ALONE_SOUND = "conference/conf-alone.wav"
MOH = "local_stream://moh"


class Member:
    def __init__(self, member_id, ch):
        self.id = member_id
        self.ch = ch
        self.speak = True
        self.hear = True
        self.kicked = None          # "kick" / "hup"
        self.joined = now_us()


class Room:
    def __init__(self, name, profile, domain):
        self.name = name
        self.profile = profile
        self.domain = domain
        self.uuid = str(_uuid.uuid4())
        self.members = []
        self.floor = None
        self.next_id = 1
        self.created = now_us()
        self.presence_count = 0
        self.plays = []              # conference file queue, played one after the other: [path, ms]
        self.player = None           # greenlet playing plays[0]


class Conferences:
    def __init__(self, switch):
        self.switch = switch
        self.rooms = {}

    # --- events -------------------------------------------------------------------------------
    def _conf_fields(self, room):
        return {"Conference-Name": room.name, "Conference-Domain": room.domain,
                "Conference-Size": str(len(room.members)), "Conference-Ghosts": "0",
                "Conference-Profile-Name": room.profile, "Conference-Unique-ID": room.uuid}

    def _emit(self, room, action, member=None, **extra):
        fields = self._conf_fields(room)
        variables = ()
        uuid = None
        if member is not None:
            ch = member.ch
            fields["Floor"] = "true" if room.floor is member else "false"
            fields.update(ch.fields())
            fields.update({"Video": "false", "Hear": _b(member.hear), "See": "true",
                           "Speak": _b(member.speak), "Talking": "false", "Mute-Detect": "false",
                           "Hold": "false", "Member-ID": str(member.id), "Member-Type": "member",
                           "Member-Ghost": "false", "Energy-Level": "100", "Current-Energy": "0"})
            variables = list(ch.variables.items())
            uuid = ch.uuid
        fields["Action"] = action
        fields.update(extra)
        ev = self.switch.factory.make("CUSTOM", fields, variables, subclass=SUBCLASS, uuid=uuid)
        if member is not None:
            member.ch.events.append("CUSTOM::" + SUBCLASS)
        self.switch.dispatch(ev)

    def _presence(self, room):
        """PRESENCE_IN for the conference's presence id after every join and leave (fixture 03)."""
        n = len(room.members)
        fields = {"proto": "conf", "login": room.name, "from": f"{room.name}@{room.domain}",
                  "event_type": "presence", "alt_event_type": "dialog",
                  "event_count": str(room.presence_count), "unique-id": room.name}
        room.presence_count += 1
        if n:
            fields.update({"force-status": f"Active ({n} caller{'s' if n > 1 else ''})",
                           "channel-state": "CS_ROUTING", "answer-state": "early" if n == 1 else "confirmed",
                           "presence-call-direction": "outbound" if n == 1 else "inbound"})
        else:
            fields.update({"force-status": "Inactive", "channel-state": "CS_HANGUP",
                           "answer-state": "terminated", "call-direction": "inbound"})
        self.switch.emit("PRESENCE_IN", fields)

    def _play(self, room, path, error=None, announce=True, async_=False):
        """Queue a file on the conference (fixture 03): `play-file` when announced (the api play;
        enter and exit sounds have none), `play-file-done` when it ends or the conference does.
        A file that cannot be played only gets its `play-file` with Error."""
        if announce:
            extra = {"File": path, "Async": "true" if async_ else "false"}
            if error:
                extra["Error"] = error
            self._emit(room, "play-file", **extra)
        if error:
            return
        from engine.sim import media
        try:
            seconds = media.duration(path, self.switch.sounds_dir) or 0
        except media.MediaError:
            seconds = 0
        room.plays.append([path, int(seconds * 1000)])
        if room.player is None:
            room.player = self.switch.spawn(self._player, room)

    def _player(self, room):
        import gevent
        while room.plays and room.name in self.rooms:
            gevent.sleep(room.plays[0][1] / 1000.0)
            if room.plays and room.name in self.rooms:
                path, ms = room.plays.pop(0)
                self._play_done(room, path, ms)
        room.player = None

    def _play_done(self, room, path, ms):
        self._emit(room, "play-file-done", seconds=str(ms // 1000), milliseconds=str(ms),
                   samples=str(ms * 8), File=path)

    # --- membership ---------------------------------------------------------------------------------
    def join(self, ch, arg):
        name, _, profile = arg.strip().split(" ")[0].partition("@")
        profile = profile or "default"
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name, profile, self.switch.global_vars.get("domain", "127.0.0.1"))
            self._emit(room, "conference-create")
        if not ch.answered:
            ch.answer()
        # the member reads the conference's mixed audio as L16: a CODEC before add-member, and
        # the call's own codec back after del-member (fixture 03)
        codecs.push_l16(ch)
        member = Member(room.next_id, ch)
        room.next_id += 1
        ch.set_var("conference_member_id", str(member.id))
        room.members.append(member)
        if len(room.members) == 1:
            self._play(room, ALONE_SOUND, error="File could not be played")
        self._emit(room, "add-member", member)
        self._presence(room)
        if len(room.members) == 1:
            room.floor = member
            self._emit(room, "floor-change", member, **{"Old-ID": "none", "New-ID": str(member.id)})
            self._play(room, MOH, error="File could not be played", async_=True)   # no moh here
        else:
            self._play(room, ENTER_SOUND, announce=False)
        try:
            while True:
                ch.wait(until=lambda: ch.may_run_messages() or member.kicked is not None)
                if member.kicked is not None:
                    break
                ch.run_messages()
        finally:
            self._leave(room, member)
            codecs.pop_l16(ch)
            if member.kicked == "hup":
                # `hup` ends the membership; the channel hangs up once the app has completed
                # (fixture 03: del-member, CODEC, EXECUTE_COMPLETE, then CHANNEL_HANGUP)
                ch.hangup_after_app = True
        ch.check()
        return "_none_"

    def _leave(self, room, member):
        """Leave order of fixture 03: the floor is released first (floor-change with no member),
        then PRESENCE_IN, the exit sound (or conf-alone for the one left), del-member; the floor
        goes to the newest member after that."""
        if member not in room.members:
            return
        had_floor = room.floor is member
        room.members.remove(member)
        if had_floor:
            room.floor = None
            self._emit(room, "floor-change", **{"Old-ID": "none", "New-ID": "none"})
        self._presence(room)
        if len(room.members) == 1 and member.ch.alive:
            self._play(room, ALONE_SOUND, error="File could not be played")
        elif room.members:
            self._play(room, EXIT_SOUND, announce=False)
        self._emit(room, "del-member", member)
        if had_floor and room.members:
            room.floor = room.members[-1]
            self._emit(room, "floor-change", room.floor, **{"Old-ID": "none", "New-ID": str(room.floor.id)})
        if not room.members:
            self.rooms.pop(room.name, None)
            self._presence(room)
            for path, ms in room.plays:           # cut short: the one playing with its length
                self._play_done(room, path, ms)
                ms = 0
            room.plays = []
            self._emit(room, "conference-destroy")

    # --- api ----------------------------------------------------------------------------------------
    def api(self, arg):
        words = arg.split()
        if not words:
            return "-ERR no conference name\n"
        if words[0] == "list" and len(words) == 1:
            return "".join(f"+OK Conference {r.name} ({len(r.members)} members rate: 8000 flags: running|answered|enforce_min|dynamic|exit_sound|enter_sound)\n"
                           + self._list(r) for r in self.rooms.values()) or "+OK No active conferences.\n"
        room = self.rooms.get(words[0])
        if room is None:
            return f"-ERR Conference {words[0]} not found\n"
        action = words[1] if len(words) > 1 else "list"
        target = words[2] if len(words) > 2 else ""
        if action == "list":
            return self._list(room)
        if action == "json_list":
            return self._json_list(room)
        if action == "play":
            self._play(room, target)
            return f"+OK (play) Playing file {target}\n"
        members = self._select(room, target)
        if action in ("kick", "hup"):
            out = ""
            for m in members:
                m.kicked = action
                self._emit(room, f"{action}-member", m)
                m.ch.wake()
                out += f"+OK {action} {m.id}\n"
            return out or f"-ERR Non-Existant ID {target}\n"
        if action in ("mute", "unmute", "deaf", "undeaf"):
            out = ""
            for m in members:
                if action in ("mute", "unmute"):
                    m.speak = action == "unmute"
                else:
                    m.hear = action == "undeaf"
                self._emit(room, f"{action}-member", m)
                out += f"+OK {action} {m.id}\n"
            return out or f"-ERR Non-Existant ID {target}\n"
        return f"-ERR Unknown conference command {action}\n"

    @staticmethod
    def _select(room, target):
        if target == "all":
            return list(reversed(room.members))
        if target == "last":
            return room.members[-1:]
        return [m for m in room.members if str(m.id) == target or m.ch.uuid == target]

    def _list(self, room):
        lines = []
        for m in reversed(room.members):
            flags = "|".join(f for f, on in (("hear", m.hear), ("speak", m.speak),
                                             ("floor", room.floor is m)) if on)
            lines.append(f"{m.id};{m.ch.name};{m.ch.uuid};{m.ch.caller_id_name};"
                         f"{m.ch.caller_id_number};{flags};0;0;100\n")
        return "".join(lines)

    def _json_list(self, room):
        now = now_us()
        members = [{"type": "caller", "id": m.id,
                    "flags": {"can_hear": m.hear, "can_see": True, "can_speak": m.speak, "hold": False,
                              "mute_detect": False, "talking": False, "has_video": False,
                              "video_bridge": False, "has_floor": room.floor is m, "is_moderator": False,
                              "end_conference": False, "mandatory_member_end_conference": False,
                              "pass_digits": False},
                    "uuid": m.ch.uuid, "caller_id_name": m.ch.caller_id_name,
                    "caller_id_number": m.ch.caller_id_number, "join_time": (now - m.joined) // 1_000_000,
                    "last_talking": 0, "energy": 100, "volume_in": 0, "volume_out": 0,
                    "output-volume": 0, "input-volume": 0}
                   for m in reversed(room.members)]
        conf = {"conference_name": room.name, "member_count": len(room.members), "ghost_count": 0,
                "rate": 8000, "run_time": (now - room.created) // 1_000_000,
                "conference_uuid": room.uuid, "canvas_count": 0, "max_bw_in": 0, "force_bw_in": 0,
                "video_floor_packets": 0, "locked": False, "destruct": False, "wait_mod": False,
                "audio_always": False, "running": True, "answered": True, "enforce_min": True,
                "bridge_to": False, "dynamic": True, "exit_sound": True, "enter_sound": True,
                "recording": False, "video_bridge": False, "video_floor_only": False,
                "video_rfc4579": False, "variables": {}, "members": members}
        return json.dumps([conf], indent="\t").replace('": ', '":\t')


def _b(value):
    return "true" if value else "false"
