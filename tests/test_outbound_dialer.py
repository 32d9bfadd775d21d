"""The dialer over the simulated trunk: each refusal, the switch's causes -> results and retries,
early media, the socket hand-over to the engine. A real simulator over TCP; the lists in SQLite."""
import datetime

import pytest

from engine.outbound.dialer import DialRequest, Dialer
from engine.outbound.lists import NumberLists
from engine.outbound.window import TimeWindow
from engine.settings import default_settings
from engine.sim.pstn import Behaviour, Population
from tests.simfix import wait_for

# a Tuesday at 10:00 in Shanghai: inside the default window
OPEN = datetime.datetime(2026, 12, 8, 2, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture
def lists(tmp_path):
    store = NumberLists(f"sqlite:///{tmp_path / 'lists.db'}").open()
    yield store
    store.close()


def make_dialer(conn, lists=None, gate=None, clock=OPEN, **cfg):
    settings = default_settings(outbound_calls={"originate_timeout": 5, **cfg})
    return Dialer(settings, conn, lists=lists, gate=gate, clock=lambda: clock)


def population(switch, **numbers):
    pop = switch.population = Population()
    for number, behaviour in numbers.items():
        pop.add(number.lstrip("n"), behaviour)
    return pop


def test_answered_leg_is_parked_and_returned(switch, conn):
    population(switch, n13800138000=Behaviour("person", ring=0.1))
    outcome = make_dialer(conn).dial(DialRequest("+86 138-0013-8000", purpose="manual", target="park"))
    assert outcome.answered and outcome.result == "answered" and outcome.counts_attempt
    leg = switch.channels[outcome.uuid]
    assert wait_for(lambda: leg.parked) is None
    assert leg.variables["hotline_purpose"] == "manual"
    assert leg.name.startswith("sofia/external/13800138000")


@pytest.mark.parametrize("behaviour, cause, result, retry, counts", [
    (Behaviour("busy"), "USER_BUSY", "busy", True, True),
    (Behaviour("busy_ringing", ring=0.3), "USER_BUSY", "busy", True, True),
    (Behaviour("no_answer"), "NO_ANSWER", "no_answer", True, True),
    (Behaviour("rejected"), "CALL_REJECTED", "rejected", True, True),
    (Behaviour("unallocated", ring=0.3), "UNALLOCATED_NUMBER", "invalid", False, True),
    (Behaviour("switched_off", ring=0.3), "NO_USER_RESPONSE", "no_answer", True, True),
    (Behaviour("temp_failure"), "NORMAL_TEMPORARY_FAILURE", "our_fault", True, False),
    (Behaviour("gateway_down"), "GATEWAY_DOWN", "our_fault", True, False),
], ids=lambda v: getattr(v, "kind", None) or str(v))
def test_the_switchs_causes_make_the_results(switch, conn, behaviour, cause, result, retry, counts):
    population(switch, n13912345678=behaviour)
    outcome = make_dialer(conn).dial(DialRequest("13912345678", purpose="callback", timeout=1))
    assert (outcome.answered, outcome.hangup_cause, outcome.result) == (False, cause, result)
    assert (outcome.retry, outcome.counts_attempt) == (retry, counts)
    assert outcome.reason == f"-ERR {cause}"          # the originate's own reply form


def test_early_media_announcement_is_not_an_answer(switch, conn):
    """The carrier plays "the number you dialled does not exist" as early media, then 404. An
    originate without ignore_early_media=true takes the early media for success (the switch's
    early_ok), the dialer's never does."""
    population(switch, n13912345678=Behaviour("unallocated", ring=1.0))
    plain = conn.api("originate sofia/gateway/trunk/13912345678 &park()")
    assert plain.startswith("+OK ")                  # what a naive dialer would count as answered
    outcome = make_dialer(conn).dial(DialRequest("13912345678", purpose="campaign", campaign="c", timeout=3))
    assert not outcome.answered and outcome.result == "invalid" and not outcome.retry


def test_refusals_each_have_their_reason(switch, conn, lists):
    pop = population(switch, n13800138000=Behaviour("person"))
    lists.add("dnc", "13800138000", reason="asked")
    lists.add("block", "0755*", reason="no calls to Shenzhen")
    lists.reload()
    dialer = make_dialer(conn, lists=lists)
    invalid = dialer.dial(DialRequest("12345678901234", purpose="callback"))
    assert invalid.result == "invalid" and invalid.refused and not invalid.retry
    assert "neither a mobile" in invalid.reason or "11 digits" in invalid.reason
    assert dialer.dial(DialRequest("110", purpose="manual")).result == "blocked"
    assert dialer.dial(DialRequest("0755-12345678", purpose="manual")).result == "blocked"
    dnc = dialer.dial(DialRequest("13800138000", purpose="campaign", campaign="x"))
    assert dnc.result == "dnc" and not dnc.retry
    # DNC is for campaigns and callbacks: an agent's manual dial still goes through
    assert dialer.dial(DialRequest("13800138000", purpose="manual", target="park")).answered
    assert pop.phones["13800138000"].calls and len(pop.phones["13800138000"].calls) == 1


def test_window_closed_refuses_and_says_when_it_opens(switch, conn):
    population(switch, n13800138000=Behaviour("person"))
    saturday = datetime.datetime(2026, 12, 12, 2, 0, tzinfo=datetime.timezone.utc)
    dialer = make_dialer(conn, clock=saturday)
    out = dialer.dial(DialRequest("13800138000", purpose="campaign", campaign="c"))
    assert out.result == "window_closed" and out.retry and not out.counts_attempt
    assert out.not_before.isoformat() == "2026-12-14T09:00:00+08:00"
    assert dialer.next_due(out, 0) == out.not_before
    assert switch.population.phones == {}            # nothing was dialled


def test_transfer_may_reach_emergency_numbers_only_when_allowed(switch, conn):
    population(switch, n110=Behaviour("person"))
    assert make_dialer(conn).dial(DialRequest("110", purpose="transfer", target="park")).result == "blocked"
    allowed = make_dialer(conn, dial_block={"transfer_allow": ["110"]})
    assert allowed.dial(DialRequest("110", purpose="transfer", target="park")).answered
    assert allowed.dial(DialRequest("110", purpose="campaign", target="park")).result == "blocked"
