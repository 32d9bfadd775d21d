"""CDR variables of a hung-up channel: stamps, epochs, durations, cause, RTP counters."""
import time

from engine.sim import sipvars
from engine.sim.events import now_us

Q850 = {"NORMAL_CLEARING": 16, "USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19,
        "CALL_REJECTED": 21, "UNALLOCATED_NUMBER": 1, "NO_ROUTE_DESTINATION": 3,
        "ORIGINATOR_CANCEL": 487, "USER_NOT_REGISTERED": 606, "DESTINATION_OUT_OF_ORDER": 27,
        "NORMAL_TEMPORARY_FAILURE": 41, "INCOMPATIBLE_DESTINATION": 88, "LOSE_RACE": 502,
        "MANAGER_REQUEST": 503, "SYSTEM_SHUTDOWN": 503, "RECOVERY_ON_TIMER_EXPIRE": 102,
        "ALLOTTED_TIMEOUT": 602, "NORMAL_UNSPECIFIED": 31, "SUBSCRIBER_ABSENT": 20}


def add_cdr_variables(ch):
    """The variables CHANNEL_HANGUP_COMPLETE carries for a CDR (fixture 01's names and order)."""
    t = ch.times
    end = t["hangup"] or now_us()
    start = t["created"]
    answered = t["answered"]
    v = ch.variables
    v["hangup_cause"] = ch.hangup_cause
    v["hangup_cause_q850"] = str(Q850.get(ch.hangup_cause, 16))
    v["digits_dialed"] = "none"

    def stamp(us):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(us / 1e6)) if us else ""
    v["start_stamp"] = v["profile_start_stamp"] = stamp(start)
    if answered:
        v["answer_stamp"] = stamp(answered)
    # only for what happened, as fixture 11's files show (the unbridged caller leg has neither)
    if t["bridged"]:
        v["bridge_stamp"] = stamp(t["bridged"])
    if t["progress"]:
        v["progress_stamp"] = stamp(t["progress"])
    v["end_stamp"] = stamp(end)
    for key, us in (("start", start), ("profile_start", start), ("answer", answered),
                    ("bridge", t["bridged"]), ("last_hold", 0), ("hold_accum", None),
                    ("resurrect", 0), ("progress", t["progress"]),
                    ("progress_media", t["progress_media"]), ("end", end)):
        if key == "hold_accum":
            v.update({"hold_accum_seconds": "0", "hold_accum_usec": "0", "hold_accum_ms": "0"})
            continue
        v[f"{key}_epoch"] = str(us // 1_000_000)
        v[f"{key}_uepoch"] = str(us)
    v["last_app"] = ch.current_app or ""
    v["caller_id"] = f'"{ch.caller_id_name}" <{ch.caller_id_number}>'
    dur = end - start
    bill = end - answered if answered else 0
    answer_wait = answered - start if answered else 0
    wait = answer_wait
    pm = t["progress_media"] - start if t["progress_media"] else 0
    v["duration"] = str(dur // 1_000_000)
    v["billsec"] = str(bill // 1_000_000)
    v["progresssec"] = "0"
    v["answersec"] = str(answer_wait // 1_000_000)
    v["waitsec"] = str(wait // 1_000_000)
    v["progress_mediasec"] = str(pm // 1_000_000)
    v["flow_billsec"] = str(dur // 1_000_000)
    v["mduration"] = str(dur // 1000)
    v["billmsec"] = str(bill // 1000)
    v["progressmsec"] = "0"
    v["answermsec"] = str(answer_wait // 1000)
    v["waitmsec"] = str(wait // 1000)
    v["progress_mediamsec"] = str(pm // 1000)
    v["flow_billmsec"] = str(dur // 1000)
    v["uduration"] = str(dur)
    v["billusec"] = str(bill)
    v["progressusec"] = "0"
    v["answerusec"] = str(answer_wait)
    v["waitusec"] = str(wait)
    v["progress_mediausec"] = str(pm)
    v["flow_billusec"] = str(dur)
    v["sip_hangup_disposition"] = ch.hangup_disposition or "send_bye"
    v.update(sipvars.hangup_sip_variables(ch.hangup_cause, v["hangup_cause_q850"],
                                          v["sip_hangup_disposition"]))
    if ch.codec:
        secs = max(bill // 1_000_000, 0)
        packets = secs * 50
        v.update({"rtp_audio_in_raw_bytes": str(packets * 103), "rtp_audio_in_media_bytes": str(packets * 103),
                  "rtp_audio_in_packet_count": str(packets), "rtp_audio_in_media_packet_count": str(packets),
                  "rtp_audio_in_skip_packet_count": "0", "rtp_audio_in_jitter_packet_count": "0",
                  "rtp_audio_in_dtmf_packet_count": "0", "rtp_audio_in_cng_packet_count": "0",
                  "rtp_audio_in_flush_packet_count": "0", "rtp_audio_in_largest_jb_size": "0",
                  "rtp_audio_in_jitter_min_variance": "0.00", "rtp_audio_in_jitter_max_variance": "0.00",
                  "rtp_audio_in_jitter_loss_rate": "0.00", "rtp_audio_in_jitter_burst_rate": "0.00",
                  "rtp_audio_in_mean_interval": "20.00", "rtp_audio_in_flaw_total": "0",
                  "rtp_audio_in_quality_percentage": "100.00", "rtp_audio_in_mos": "4.50",
                  "rtp_audio_out_raw_bytes": str(packets * 103), "rtp_audio_out_media_bytes": str(packets * 103),
                  "rtp_audio_out_packet_count": str(packets), "rtp_audio_out_media_packet_count": str(packets),
                  "rtp_audio_out_skip_packet_count": "0", "rtp_audio_out_dtmf_packet_count": "0",
                  "rtp_audio_out_cng_packet_count": "0", "rtp_audio_rtcp_packet_count": "0",
                  "rtp_audio_rtcp_octet_count": "0"})
