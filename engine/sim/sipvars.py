"""Channel variables a sofia channel carries (names and order as in the fixtures' CDRs).

The engine reads some of them (sip_call_id, sip_from_user, the CDR times); the rest are there so
a CHANNEL_HANGUP_COMPLETE or uuid_dump looks like the real switch's.
"""
import random
import uuid as _uuid

VERSION = "1.11.3-dev~64bit"
SDP_OFFER = ("v=0\r\no=FreeSWITCH 1795360557 1795360558 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\n"
             "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 102 9 0 8 103 101\r\n"
             "a=rtpmap:102 opus/48000/2\r\na=fmtp:102 useinbandfec=1; maxaveragebitrate=30000; "
             "maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40\r\na=rtpmap:9 G722/8000\r\n"
             "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:103 telephone-event/48000\r\n"
             "a=fmtp:103 0-15\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n")
SDP_ANSWER = ("v=0\r\no=FreeSWITCH 1795366371 1795366372 IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\n"
              "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 102 103\r\n"
              "a=rtpmap:102 opus/48000/2\r\na=fmtp:102 useinbandfec=1; ptime=20; minptime=10; "
              "maxptime=40\r\na=rtpmap:103 telephone-event/48000\r\na=fmtp:103 0-15\r\n"
              "a=ptime:20\r\na=sendrecv\r\n")
EP_CODECS = ("mod_opus.opus@48000h@20i@2c,mod_spandsp.G722@8000h@20i@64000b,"
             "CORE_PCM_MODULE.PCMU@8000h@20i@64000b,CORE_PCM_MODULE.PCMA@8000h@20i@64000b")


def _port():
    return str(random.randrange(16384, 32768, 2))


def inbound_sip_variables(ch, cid_number, cid_name, destination, profile="external",
                          local_port=5080, remote_port=5060, host="127.0.0.1"):
    """The variables a sofia inbound leg carries from its INVITE (fixture 01 names and order)."""
    tag = _uuid.uuid4().hex[:13]
    call_id = str(_uuid.uuid4())
    return {
        "direction": "inbound", "uuid": ch.uuid, "session_id": str(ch.switch.next_session_id()),
        "sip_from_user": cid_number, "sip_from_uri": f"{cid_number}@{host}", "sip_from_host": host,
        "video_media_flow": "disabled", "audio_media_flow": "disabled", "text_media_flow": "disabled",
        "channel_name": ch.name, "sip_call_id": call_id, "sip_local_network_addr": host,
        "sip_network_ip": host, "sip_network_port": str(remote_port),
        "sip_invite_stamp": str(ch.times["created"]), "sip_received_ip": host,
        "sip_received_port": str(remote_port), "sip_via_protocol": "udp",
        "sip_from_user_stripped": cid_number, "sip_from_tag": tag, "sofia_profile_name": profile,
        "sofia_profile_url": f"sip:mod_sofia@{host}:{local_port}", "recovery_profile_name": profile,
        "sip_Remote-Party-ID": f'"{cid_name}" <sip:{cid_number}@{host}>;party=calling;screen=yes;privacy=off',
        "sip_cid_type": "rpid", "sip_full_via": f"SIP/2.0/UDP {host};rport={remote_port};branch=z9hG4bK{tag}",
        "sip_from_display": cid_name,
        "sip_full_from": f'"{cid_name}" <sip:{cid_number}@{host}>;tag={tag}',
        "sip_full_to": f"<sip:{destination}@{host}:{local_port}>",
        "sip_allow": "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY",
        "sip_req_user": destination, "sip_req_port": str(local_port),
        "sip_req_uri": f"{destination}@{host}:{local_port}", "sip_req_host": host,
        "sip_to_user": destination, "sip_to_port": str(local_port),
        "sip_to_uri": f"{destination}@{host}:{local_port}", "sip_to_host": host,
        "sip_contact_user": "mod_sofia", "sip_contact_port": str(remote_port),
        "sip_contact_uri": f"mod_sofia@{host}:{remote_port}", "sip_contact_host": host,
        "rtp_use_codec_string": "OPUS,G722,PCMU,PCMA,H264,VP8",
        "sip_user_agent": f"FreeSWITCH-mod_sofia/{VERSION}",
        "sip_via_host": host, "sip_via_rport": str(remote_port), "max_forwards": "70",
        "switch_r_sdp": SDP_OFFER.format(port=_port()), "ep_codec_string": EP_CODECS,
        "endpoint_disposition": "DELAYED NEGOTIATION", "call_uuid": ch.uuid,
    }


def outbound_sip_variables(ch, ext, host):
    """What a sofia outbound leg learns while it is set up and answered."""
    target = f"{ext}@{host}"
    return {"sip_destination_url": f"sip:{target}",
            "sip_outgoing_contact_uri": "<sip:mod_sofia@127.0.0.1:5060>", "sip_req_uri": target,
            "sofia_profile_url": "sip:mod_sofia@127.0.0.1:5060", "sip_local_network_addr": "127.0.0.1",
            "sip_reply_host": "127.0.0.1", "sip_reply_port": "5080", "sip_network_ip": "127.0.0.1",
            "sip_network_port": "5080", "sip_user_agent": f"FreeSWITCH-mod_sofia/{VERSION}",
            "sip_allow": "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY",
            "sip_from_display": ch.caller_id_name,
            "sip_full_from": f'"{ch.caller_id_name}" <sip:{ch.caller_id_number}@127.0.0.1>',
            "sip_full_to": f"<sip:{target}>", "sip_from_user": ch.caller_id_number,
            "sip_from_uri": f"{ch.caller_id_number}@127.0.0.1", "sip_from_host": "127.0.0.1",
            "sip_to_user": ext, "sip_to_uri": target, "sip_to_host": host.split(":")[0],
            "sip_contact_params": "transport=udp", "sip_contact_user": ext, "sip_contact_uri": target,
            "sip_contact_host": host.split(":")[0], "sip_to_tag": _uuid.uuid4().hex[:13],
            "sip_from_tag": _uuid.uuid4().hex[:13], "sip_cseq": str(random.randrange(10**8, 10**9))}


def media_variables(codec="OPUS"):
    """RTP variables set when the codec is negotiated (names and order as on the capture host;
    OPUS 48000 there, PCMA 8000 in fixture 09b's forced legs)."""
    from engine.sim.codecs import CODECS, RTP_PT
    iana, rate, _ = CODECS[codec]
    wire_rate = "8000" if codec == "G722" else rate       # G722's RTP clock is 8000
    channels = "1"
    local, remote = _port(), _port()
    v = {"rtp_use_codec_string": "OPUS,G722,PCMU,PCMA,H264,VP8",
         "remote_video_media_flow": "inactive", "remote_text_media_flow": "inactive",
         "remote_audio_media_flow": "sendrecv", "audio_media_flow": "sendrecv",
         "rtp_audio_recv_pt": RTP_PT[codec], "rtp_use_codec_name": iana}
    if codec == "OPUS":
        v["rtp_use_codec_fmtp"] = "useinbandfec=1; ptime=20; minptime=10; maxptime=40"
    v.update({"rtp_use_codec_rate": wire_rate, "rtp_use_codec_ptime": "20",
              "rtp_use_codec_channels": channels,
              "rtp_last_audio_codec_string": f"{iana}@{wire_rate}h@20i@{channels}c", "read_codec": iana,
              "original_read_codec": iana, "read_rate": rate, "original_read_rate": rate,
              "write_codec": iana, "write_rate": rate, "dtmf_type": "rfc2833",
              "local_media_ip": "127.0.0.1", "local_media_port": local, "advertised_media_ip": "127.0.0.1",
              "rtp_use_timer_name": "soft", "rtp_use_pt": RTP_PT[codec],
              "rtp_use_ssrc": str(random.randrange(1, 2**32)),
              "rtp_2833_send_payload": "103" if codec == "OPUS" else "101",
              "rtp_2833_recv_payload": "101", "remote_media_ip": "127.0.0.1", "remote_media_port": remote})
    if codec == "OPUS":
        v["rtp_local_sdp_str"] = SDP_ANSWER.format(port=local)
    else:
        v["rtp_local_sdp_str"] = (f"v=0\r\no=FreeSWITCH 1795366371 1795366372 IN IP4 127.0.0.1\r\n"
                                  f"s=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {local} RTP/AVP "
                                  f"{RTP_PT[codec]} 101\r\na=rtpmap:{RTP_PT[codec]} {iana}/{wire_rate}\r\n"
                                  "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
                                  "a=ptime:20\r\na=sendrecv\r\n")
    return v


def hangup_sip_variables(cause, q850, disposition):
    """A BYE/CANCEL from the far end carries a SIP status and a Reason header."""
    if not disposition.startswith("recv_"):
        return {}
    status = {"recv_bye": "200", "recv_cancel": "487", "recv_refuse": "603"}.get(disposition, "200")
    return {"sip_reason": f'Q.850;cause={q850};text="{cause}"', "sip_term_status": status,
            "proto_specific_hangup_cause": f"sip:{status}", "sip_term_cause": str(q850)}
