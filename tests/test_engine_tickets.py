"""Tickets inside the running engine: the outbox consumer turns an abandoned queue call into a
callback ticket, and an agent files a work order for the call they are wrapping up through the
control API."""
import pytest

from engine.control.client import ApiError, Client
from tests.acdfix import AcdRig, agent, queue, wait_for
from tests.enginefix import free_port

TOKENS = {"TOK_1001": "desk-1001", "TOK_1002": "desk-1002"}


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    port = free_port()
    control = {"listen_port": port, "tokens": [
        {"name": "desk1001", "role": "agent", "agent": "1001", "token_env": "TOK_1001"},
        {"name": "desk1002", "role": "agent", "agent": "1002", "token_env": "TOK_1002"}]}
    r = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001", wrapup_seconds=30), agent("1002")],
               [queue("general")], env=TOKENS, control=control, tickets=True)
    r.url = f"http://127.0.0.1:{port}"
    yield r
    r.stop()


def test_abandoned_call_becomes_a_callback_ticket_and_an_agent_files_one_in_wrap_up(rig):
    assert rig.engine.tickets is not None
    gone = rig.call("13800000001")                       # nobody logged in yet: waits, then leaves
    assert wait_for(lambda: rig.acd.store.queue_length("general") == 1)
    gone.hangup()
    rig.login("1001", hangup_after=0.2)
    served = rig.call("13800000002")
    assert rig.wait_state("1001", "wrap_up", timeout=5)
    desk = Client(rig.url, token=TOKENS["TOK_1001"])
    filed = desk.post("/v1/tickets", {"call": served.uuid, "category": "consultation",
                                      "summary": "市民咨询灵活就业参保，需人社局回复"})
    assert filed["ticket"].startswith("T") and filed["state"] in ("new", "assigned")
    with pytest.raises(ApiError) as e:                   # another agent cannot file for this call
        Client(rig.url, token=TOKENS["TOK_1002"]).post(
            "/v1/tickets", {"call": served.uuid, "category": "consultation", "summary": "x"})
    assert e.value.status == 403
    with pytest.raises(ApiError) as e:
        desk.post("/v1/tickets", {"call": served.uuid, "category": "nonsense", "summary": "x"})
    assert e.value.status == 409 and "nonsense" in str(e.value)
    assert wait_for(lambda: len(rig.cdrs()) == 2)
    rig.engine.tickets.consumer.drain()                  # what the running consumer does every 2 s
    store = rig.engine.tickets.checker.store
    tickets = store.list() if hasattr(store, "list") else []
    kinds = sorted((t["kind"], t["caller_number"]) for t in tickets)
    assert ("callback", "13800000001") in kinds
    assert ("agent", "13800000002") in kinds             # linked to its CDR when that arrived
