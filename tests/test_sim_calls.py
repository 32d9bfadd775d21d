"""Bridges, conferences, eavesdrop, json events and the listing commands of the simulated switch."""
import json

from engine.esl.connection import InboundConnection
from tests.simfix import parked_caller, wait_for


def names_for(conn, uuid_, since=0):
    return [e.name if e.name != "CUSTOM" else e.get("Action") for e in conn.seen[since:] if e.uuid == uuid_]


def test_uuid_bridge_and_hangup_follow_fixture_02(switch, conn):
    a1, b1 = parked_caller(switch, conn, 1)
    a2, b2 = parked_caller(switch, conn, 2)
    mark = len(conn.seen)
    assert conn.api(f"uuid_bridge {b1} {b2}") == f"+OK {b2}\n"
    wait_for(lambda: "CALL_UPDATE" in names_for(conn, b1, mark) and
             "CALL_UPDATE" in names_for(conn, b2, mark) and "RECV_INFO" in names_for(conn, a2, mark))
    assert names_for(conn, b1, mark) == ["CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_STATE",
                                         "CHANNEL_STATE", "CHANNEL_STATE", "CHANNEL_EXECUTE",
                                         "CHANNEL_BRIDGE", "CALL_UPDATE"]
    assert names_for(conn, b2, mark)[-2:] == ["CHANNEL_STATE", "CALL_UPDATE"]   # CS_EXCHANGE_MEDIA
    assert names_for(conn, a1, mark) == ["CALL_UPDATE", "RECV_INFO"]             # the caller's phone
    bridge = next(e for e in conn.seen[mark:] if e.name == "CHANNEL_BRIDGE")
    assert bridge.get("Bridge-A-Unique-ID") == b1 and bridge.get("Bridge-B-Unique-ID") == b2
    assert bridge.get("Other-Leg-Unique-ID") == b2
    calls = json.loads(conn.api("show calls as json"))
    assert any(r["uuid"] == b1 and r["b_uuid"] == b2 for r in calls["rows"])

    mark = len(conn.seen)
    conn.api(f"uuid_kill {a1}")                     # the remote caller of leg 1 hangs up
    wait_for(lambda: not switch.channels)
    wait_for(lambda: all(names_for(conn, u, mark)[-2:] == ["CHANNEL_DESTROY", "CHANNEL_STATE"]
                         for u in (a1, b1, a2, b2)))
    seq1 = names_for(conn, b1, mark)
    assert seq1[0] == "CHANNEL_HANGUP" and "CHANNEL_UNBRIDGE" in seq1
    assert seq1[-3:] == ["CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "CHANNEL_STATE"]
    assert names_for(conn, b2, mark)[0] == "CHANNEL_HANGUP"     # the bridged partner follows
    assert conn.api(f"uuid_kill {b2}", check=False) == "-ERR No such channel!\n"


def test_conference_three_way(switch, conn):
    legs = [parked_caller(switch, conn, n)[1] for n in (1, 2, 3)]
    mark = len(conn.seen)
    for b in legs:
        assert conn.api(f"uuid_transfer {b} 7100 XML public") == "+OK\n"
        wait_for(lambda: "add-member" in names_for(conn, b, mark))
    listing = conn.api("conference esl-fixture list")
    assert [line.split(";")[2] for line in listing.strip().split("\n")] == list(reversed(legs))
    assert "hear|speak|floor" in listing.strip().split("\n")[-1]
    data = json.loads(conn.api("conference esl-fixture json_list"))
    assert data[0]["member_count"] == 3
    assert conn.api("conference esl-fixture mute 1") == "+OK mute 1\n"
    assert conn.api("conference esl-fixture unmute 1") == "+OK unmute 1\n"
    actions = [e.get("Action") for e in conn.seen[mark:] if e.name == "CUSTOM"]
    assert actions[:2] == ["conference-create", "play-file"]
    assert actions.count("add-member") == 3 and "floor-change" in actions
    assert "mute-member" in actions and "unmute-member" in actions
    first = names_for(conn, legs[0], mark)
    # fixture 03: the answered call rings again while routing, then reads the mix as L16
    assert first[:6] == ["CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_CALLSTATE",
                         "CHANNEL_STATE", "CHANNEL_CALLSTATE", "CHANNEL_STATE"]
    calls = [e.get("Channel-Call-State") for e in conn.seen[mark:]
             if e.uuid == legs[0] and e.name == "CHANNEL_CALLSTATE"]
    assert calls[:2] == ["RINGING", "ACTIVE"]
    assert "CODEC" in first and first.index("CODEC") < first.index("add-member")
    assert conn.api("conference esl-fixture hup all") == "+OK hup 3\n+OK hup 2\n+OK hup 1\n"
    wait_for(lambda: not switch.channels)
    wait_for(lambda: any(e.get("Action") == "conference-destroy" for e in conn.seen))
    actions = [e.get("Action") for e in conn.seen[mark:] if e.name == "CUSTOM"]
    assert actions[-1] == "conference-destroy" and actions.count("del-member") == 3
    wait_for(lambda: all("CHANNEL_DESTROY" in names_for(conn, b, mark) for b in legs))
    for b in legs:        # hup: the member leaves, the app completes, then the channel hangs up
        seq = names_for(conn, b, mark)
        left = seq.index("del-member")
        assert seq[left + 1:left + 4] == ["CODEC", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP"]
    assert conn.api("conference esl-fixture list", check=False).startswith("-ERR")


def switch_caller_of(conn, uuid_):
    # the first event with a caller profile (the CS_NEW state has none, as on the switch: fixture 01)
    return next(e.get("Caller-Caller-ID-Number") for e in conn.seen
                if e.uuid == uuid_ and e.get("Caller-Caller-ID-Number"))


def test_eavesdrop_media_bug_and_completion(switch, conn):
    _, b1 = parked_caller(switch, conn, 1)
    _, b2 = parked_caller(switch, conn, 2)
    a3, sup = parked_caller(switch, conn, 3)
    conn.api(f"uuid_bridge {b1} {b2}")
    wait_for(lambda: switch.channels[b1].bridged_to == b2)
    mark = len(conn.seen)
    from engine.esl import commands
    conn.sendmsg(commands.execute("eavesdrop", b1, target_uuid=sup))
    wait_for(lambda: "MEDIA_BUG_START" in names_for(conn, b1, mark))
    bug = next(e for e in conn.seen[mark:] if e.name == "MEDIA_BUG_START")
    assert bug.get("Media-Bug-Function") == "eavesdrop" and bug.get("Media-Bug-Target") == b1
    assert "eavesdrop" in conn.api("show channels")
    conn.api(f"uuid_kill {a3}")                        # the supervisor's phone hangs up
    wait_for(lambda: names_for(conn, sup, mark)[-1:] == ["CHANNEL_STATE"] and sup not in switch.channels)
    seq = names_for(conn, sup, mark)
    # as in fixture 04: the read codec goes L16 and back, the phone gets a display update
    assert seq[:8] == ["CHANNEL_EXECUTE", "CODEC", "CALL_UPDATE", "CHANNEL_HANGUP", "CODEC",
                       "CHANNEL_EXECUTE_COMPLETE", "PRIVATE_COMMAND", "CHANNEL_UNPARK"]
    codecs = [e for e in conn.seen[mark:] if e.uuid == sup and e.name == "CODEC"]
    assert [e.get("Channel-Read-Codec-Name") for e in codecs] == ["L16", "opus"]
    assert codecs[0].get("Channel-Read-Codec-Bit-Rate") == "768000"
    update = next(e for e in conn.seen[mark:] if e.uuid == sup and e.name == "CALL_UPDATE")
    assert update.get("Sent-Callee-ID-Number") == switch_caller_of(conn, b1)
    assert update.get("Bridged-To") is None
    assert not any(e.get("Other-Leg-Unique-ID") for e in conn.seen[mark:] if e.uuid == sup)
    assert names_for(conn, a3, mark)[:2] == ["CALL_UPDATE", "RECV_INFO"]   # the supervisor's phone
    assert "MEDIA_BUG_STOP" in names_for(conn, b1, mark)


def test_json_events_dump_and_filters(switch):
    c = InboundConnection(*switch.address, "ClueCon", events=("CHANNEL_ANSWER", "CHANNEL_PARK"),
                          event_format="json", reconnect=False)
    seen = []
    c.on("*", seen.append)
    c.start(timeout=5)
    a, b = parked_caller(switch, c, 4)
    wait_for(lambda: len([e for e in seen if e.name == "CHANNEL_PARK"]) == 2)
    assert {e.name for e in seen} == {"CHANNEL_ANSWER", "CHANNEL_PARK"}
    ans = next(e for e in seen if e.uuid == b and e.name == "CHANNEL_ANSWER")
    assert ans.format == "json" and ans.get("Caller-Caller-ID-Name") == "Fixture 4"
    assert ans.get("FreeSWITCH-IPv6") == "::1"         # json values are not URL-encoded
    dump = json.loads(c.api(f"uuid_dump {b} json"))
    assert dump["Event-Name"] == "CHANNEL_DATA" and dump["Unique-ID"] == b
    plain = c.api(f"uuid_dump {b}")
    assert plain.startswith("Event-Name: CHANNEL_DATA\n") and "Caller-Caller-ID-Name: Fixture%204" in plain
    assert c.api(f"uuid_getvar {b} sip_from_user") == "15550000004"
    assert c.api(f"uuid_setvar {b} hotline_node n1") == "+OK\n"
    assert c.api(f"uuid_getvar {b} hotline_node") == "n1"
    assert c.api(f"uuid_getvar {b} nothing_here") == "_undef_"
    rows = json.loads(c.api("show channels as json"))
    assert rows["row_count"] == 2 and {r["uuid"] for r in rows["rows"]} == {a, b}
    assert c.api("show channels").strip().endswith("2 total.")
    r = c.command("filter Unique-ID " + b)
    assert r.reply_text == f"+OK filter added. [Unique-ID]=[{b}]"
    c.stop()


def test_heartbeat_event(switch, conn):
    switch.heartbeat()
    wait_for(lambda: any(e.name == "HEARTBEAT" for e in conn.seen))
    hb = next(e for e in conn.seen if e.name == "HEARTBEAT")
    assert hb.get("Event-Info") == "System Ready" and hb.get("Session-Count") == "0"


def test_park_after_bridge_keeps_the_other_leg(switch, conn):
    _, b1 = parked_caller(switch, conn, 1)
    a2, b2 = parked_caller(switch, conn, 2)
    conn.api(f"uuid_setvar {b1} park_after_bridge true")
    conn.api(f"uuid_bridge {b1} {b2}")
    wait_for(lambda: switch.channels[b1].bridged_to == b2)
    mark = len(conn.seen)
    conn.api(f"uuid_kill {a2}")                       # leg 2's caller hangs up
    wait_for(lambda: b2 not in switch.channels)
    wait_for(lambda: switch.channels[b1].parked)
    assert switch.channels[b1].alive and switch.channels[b1].bridged_to is None
    wait_for(lambda: "CHANNEL_PARK" in names_for(conn, b1, mark))
    assert names_for(conn, b1, mark)[:2] == ["CHANNEL_UNBRIDGE", "CHANNEL_PARK"]


def test_far_leg_and_bridge_partner_stay_up_until_bye_and_next_frame(switch, conn):
    """Fixtures 04 and 06: uuid_kill of one leg, then at once of its SIP peer or bridge partner:
    the real switch answers +OK for both (the BYE and the bridge thread take a few ms)."""
    a1, b1 = parked_caller(switch, conn, 1)
    a2, b2 = parked_caller(switch, conn, 2)
    assert conn.api(f"uuid_bridge {b1} {b2}") == f"+OK {b2}\n"
    wait_for(lambda: switch.channels[b2].bridged_to == b1)
    assert conn.api(f"uuid_kill {a2}") == "+OK\n"
    assert conn.api(f"uuid_kill {b2}") == "+OK\n"        # the BYE from a2 has not landed yet
    assert conn.api(f"uuid_kill {b1}", check=False) == "+OK\n"   # b2's bridge partner: next frame
    wait_for(lambda: all("CHANNEL_DESTROY" in names_for(conn, u) for u in (a1, b1, a2, b2)))
    hangups = {e.uuid: e.get("variable_sip_hangup_disposition") for e in conn.seen
               if e.name == "CHANNEL_HANGUP_COMPLETE"}
    assert hangups[b2] == "send_bye"          # killed by us, not by the BYE that came later
    assert hangups[a1] == "recv_bye"          # b1's caller phone heard b1's BYE
    assert conn.api(f"uuid_kill {b1}", check=False) == "-ERR No such channel!\n"


def test_conference_floor_holder_leaves_in_fixture_03_order(switch, conn):
    pairs = [parked_caller(switch, conn, n) for n in (1, 2, 3)]
    legs = [b for _, b in pairs]
    mark = len(conn.seen)
    for b in legs:
        assert conn.api(f"uuid_transfer {b} 7100 XML public") == "+OK\n"
        wait_for(lambda: "add-member" in names_for(conn, b, mark))
    # enter sounds for members 2 and 3 are played without a play-file event, then reported done
    wait_for(lambda: sum(e.get("Action") == "play-file-done" for e in conn.seen[mark:]) == 2)
    files = [e.get("File") for e in conn.seen[mark:] if e.get("Action") == "play-file"]
    assert files == ["conference/conf-alone.wav", "local_stream://moh"]      # both fail: no sounds
    mark = len(conn.seen)
    conn.api(f"uuid_kill {pairs[0][0]}")          # member 1 (the floor) hangs up from its phone
    wait_for(lambda: "del-member" in names_for(conn, legs[0], mark)
             and "floor-change" in names_for(conn, legs[2], mark))
    conf = [(e.get("Action") or e.name, e.uuid or None, e.get("New-ID")) for e in conn.seen[mark:]
            if e.name in ("PRESENCE_IN", "CUSTOM")]
    assert conf[:4] == [("floor-change", None, "none"), ("PRESENCE_IN", None, None),
                        ("del-member", legs[0], None), ("floor-change", legs[2], "3")]
    assert "floor-change" not in names_for(conn, legs[1], mark)     # the newest member gets it
