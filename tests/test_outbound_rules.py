"""Numbers, results and retries, time windows across holidays and 调休 days (fake clock), and the
inbound-first gate on a real Redis."""
import datetime
import time
from zoneinfo import ZoneInfo

import pytest

from engine.acd.store import AcdStore
from engine.outbound.config import OutboundCallSettings, RetryRule
from engine.outbound.gate import Gate
from engine.outbound.numbers import InvalidNumber, normalise
from engine.outbound.results import RetryRules, classify
from engine.outbound.window import TimeWindow

SH = ZoneInfo("Asia/Shanghai")


def local(text):
    return datetime.datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.mark.parametrize("raw, national, kind", [
    ("13800138000", "13800138000", "mobile"),
    ("+86 138-0013-8000", "13800138000", "mobile"),
    ("0086 13800138000", "13800138000", "mobile"),
    ("8613800138000", "13800138000", "mobile"),
    ("013800138000", "13800138000", "mobile"),
    ("１３８００１３８０００", "13800138000", "mobile"),
    ("(010) 1234 5678", "01012345678", "landline"),
    ("+86 10 12345678", "01012345678", "landline"),
    ("0571-87654321", "057187654321", "landline"),
    ("0913-1234567", "09131234567", "landline"),
    ("12345", "12345", "service"),
    ("110", "110", "service"),
    ("4008123123", "4008123123", "service"),
])
def test_numbers_normalise(raw, national, kind):
    n = normalise(raw)
    assert (n.national, n.kind) == (national, kind)


@pytest.mark.parametrize("raw, why", [
    ("", "empty"),
    ("1380013800", "11 digits"),
    ("23800138000", "neither a mobile"),
    ("010-1234567", "8 digits after the area code"),
    ("0571-123456", "7 or 8 digits"),
    ("+1 415 555 0100", "international number outside China"),
    ("138 0013 800x", "'x' is not a digit"),
    ("87654321", "needs its area code"),
])
def test_invalid_numbers_say_why(raw, why):
    with pytest.raises(InvalidNumber, match=why):
        normalise(raw)


def test_local_number_takes_the_configured_area_code():
    assert normalise("8765 4321", area_code="0571").national == "057187654321"


@pytest.mark.parametrize("cause, result, retry, counts", [
    ("USER_BUSY", "busy", True, True),
    ("NO_ANSWER", "no_answer", True, True),
    ("NO_USER_RESPONSE", "no_answer", True, True),
    ("CALL_REJECTED", "rejected", True, True),
    ("UNALLOCATED_NUMBER", "invalid", False, True),
    ("INVALID_NUMBER_FORMAT", "invalid", False, True),
    ("NORMAL_TEMPORARY_FAILURE", "our_fault", True, False),
    ("GATEWAY_DOWN", "our_fault", True, False),
    ("NETWORK_OUT_OF_ORDER", "our_fault", True, False),
    ("SOMETHING_NEW", "failed", True, True),
    (None, "our_fault", True, False),                 # the switch never reported
])
def test_causes_to_results(cause, result, retry, counts):
    assert classify(False, cause) == (result, retry, counts)
    assert classify(True, None) == ("answered", False, True)


def test_retry_rules_delay_and_max_attempts():
    now = datetime.datetime(2026, 12, 8, 2, 0, tzinfo=datetime.timezone.utc)
    rules = RetryRules.from_settings(OutboundCallSettings(retry={"busy": RetryRule(delay_minutes=10, max_attempts=2)}))
    assert rules.next_due("busy", 1, now) == now + datetime.timedelta(minutes=10)
    assert rules.next_due("busy", 2, now) is None                        # attempts used up
    assert rules.next_due("invalid", 0, now) is None and rules.next_due("answered", 0, now) is None
    assert rules.next_due("no_answer", 1, now) == now + datetime.timedelta(minutes=60)   # default
    assert rules.next_due("our_fault", 9, now) is not None and rules.next_due("our_fault", 10, now) is None


def test_window_across_national_day_and_the_make_up_saturday():
    w = TimeWindow()          # mon-fri 09:00-12:00, 14:00-20:00, Asia/Shanghai, chinese-calendar
    assert w.is_open(local("2026-09-30 19:59"))
    assert not w.is_open(local("2026-09-30 20:00"))
    assert not w.is_open(local("2026-09-30 12:30"))                     # lunch
    assert not w.is_open(local("2026-10-01 10:00"))                     # National Day, a Thursday
    assert not w.is_open(local("2026-10-05 10:00"))                     # a Monday off
    assert w.next_open(local("2026-09-30 20:00")) == local("2026-10-08 09:00")
    assert w.is_open(local("2026-10-10 10:00"))                         # 调休: Saturday worked
    assert not w.is_open(local("2026-10-11 10:00"))                     # the Sunday after: off
    assert not w.is_open(local("2026-10-17 10:00"))                     # an ordinary Saturday
    assert w.next_open(local("2026-10-09 20:30")) == local("2026-10-10 09:00")
    # UTC in, Shanghai out: 2026-10-10 01:00 UTC is 09:00 there
    assert w.is_open(datetime.datetime(2026, 10, 10, 1, 0, tzinfo=datetime.timezone.utc))
    assert w.closes_at(local("2026-10-10 11:00")) == local("2026-10-10 12:00")


def test_window_with_explicit_dates_and_without_the_package():
    w = TimeWindow(days=("mon", "tue", "wed", "thu", "fri", "sat"), hours=("10:00-16:00",), cn_calendar=False,
                   holidays=("2026-12-24..2026-12-25",), workdays=("2026-12-27",))
    assert not w.is_open(local("2026-12-24 11:00")) and w.is_open(local("2026-12-26 11:00"))
    assert w.is_open(local("2026-12-27 11:00"))                         # a Sunday made a working day
    assert w.next_open(local("2026-12-23 16:00")) == local("2026-12-26 10:00")
    with pytest.raises(ValueError):
        TimeWindow(days=("monday",))
    never = TimeWindow(days=(), hours=("10:00-11:00",))
    assert never.next_open(local("2026-12-23 16:00")) is None


@pytest.fixture
def store(redis_server, redis_prefix):
    s = AcdStore(redis_server.url, prefix=redis_prefix)
    yield s
    s.flush()


def test_gate_pauses_while_an_inbound_caller_waits_too_long(store):
    cfg = OutboundCallSettings(pause_inbound_wait=30, trunk_channels=10, max_trunk_share=0.3, max_agent_share=0.5)
    now = [1_000_000.0]
    gate = Gate(store, cfg, clock=lambda: now[0])
    assert gate.check() is None
    store.join("general", "caller-1", "e1", "13900000000", joined=now[0] - 10)
    assert gate.check() is None                                 # 10 s: fine
    now[0] += 25
    why = gate.check()
    assert why and "35 s" in why                                # 35 s > 30: no new dial
    store.leave("general", "caller-1")
    assert gate.check() is None


def test_gate_shares_of_trunk_channels_and_agents(store):
    cfg = OutboundCallSettings(trunk_channels=10, max_trunk_share=0.3, max_agent_share=0.5)
    gate = Gate(store, cfg)
    for leg in ("a", "b", "c"):
        assert gate.check() is None
        gate.leg_started(leg)
    assert "3 of 3 trunk channels" in gate.check()
    gate.leg_ended("b")
    assert gate.check() is None
    for agent_id in ("1001", "1002", "1003", "1004"):
        store.transition(agent_id, "*", "available")
    store.transition("1005", "*", "logged_out")
    gate.agent_taken("1001")
    assert gate.check(needs_agent=True) is None                 # 1 of floor(4 * 0.5) = 2
    gate.agent_taken("1002")
    assert "2 of 2 agents" in gate.check(needs_agent=True)
    assert gate.check(needs_agent=False) is None                # a dial that needs no agent goes
    gate.agent_released("1001")
    assert gate.check(needs_agent=True) is None


def test_gate_forgets_legs_whose_hangup_was_never_seen(store):
    now = [time.time()]
    gate = Gate(store, OutboundCallSettings(trunk_channels=1, max_trunk_share=1.0), clock=lambda: now[0])
    gate.leg_started("lost")
    assert gate.check()
    now[0] += 5 * 3600
    assert gate.check() is None


@pytest.mark.parametrize("yaml_text, where, problem", [
    ("outbound_calls:\n  window:\n    hours: [\"9-12\"]\n", "5:13: outbound_calls.window.hours[0]", "08:30-12:00"),
    ("outbound_calls:\n  window:\n    days: [monday]\n", "5:12: outbound_calls.window.days[0]", "unknown day"),
    ("outbound_calls:\n  area_code: \"571\"\n", "4:3: outbound_calls.area_code", "0 then 2 or 3 digits"),
    ("outbound_calls:\n  retry: {invalid: {max_attempts: 2}}\n", "4:11: outbound_calls.retry.invalid", "never retried"),
    ("outbound_calls:\n  campaigns: {c1: {window: {timezone: Mars/Base}}}\n",
     "4:29: outbound_calls.campaigns.c1.window.timezone", "unknown time zone"),
    ("outbound_calls:\n  dial_block: {prefixes: [\"/0571(/\"]}\n", "4:27: outbound_calls.dial_block.prefixes[0]",
     "bad regex"),
])
def test_settings_problems_point_at_the_line(tmp_path, yaml_text, where, problem):
    from engine.settings import SettingsError, load_settings
    path = tmp_path / "hotline.yaml"
    path.write_text('trunk: {dids: ["12345"]}\nesl: {allow_default_password: true}\n' + yaml_text, encoding="utf-8")
    with pytest.raises(SettingsError) as e:
        load_settings(path, env={})
    assert f"{path}:{where}" in str(e.value) and problem in str(e.value)


def test_gate_reserves_the_last_channel_once(store):
    gate = Gate(store, OutboundCallSettings(trunk_channels=10, max_trunk_share=0.2))
    assert gate.reserve_leg("a") and gate.reserve_leg("b")
    assert not gate.reserve_leg("c")                            # 2 of 2 taken
    gate.leg_ended("a")
    assert gate.reserve_leg("c") and gate.legs() == 2


def test_gate_reads_the_acds_own_queues_and_agents_when_given(store):
    now = [1_000_000.0]
    gate = Gate(store, OutboundCallSettings(pause_inbound_wait=5, max_agent_share=1.0), clock=lambda: now[0],
                queues=lambda: ["pension"], agents=lambda: ["1001"])
    store.join("other-engines-queue", "c1", "e1", "139", joined=now[0] - 60)
    assert gate.check() is None                                  # not one of ours
    store.join("pension", "c2", "e1", "139", joined=now[0] - 60)
    assert "waited 60 s" in gate.check()
    store.leave("pension", "c2")
    store.transition("1001", "*", "available")
    store.transition("1002", "*", "available")
    assert gate.staffed_agents() == 1
