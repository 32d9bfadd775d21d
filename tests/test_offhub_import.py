"""The switch-CDR import reads and parses its files off the hub: on the hub it stalled every call
for seconds once a minute, and the watchdog then raced normal call ends (issue 17, section 4)."""
import gevent
import pytest
from gevent import monkey

from engine.cdr import xmlcdr
from engine.daemon import welcome_handler
from tests.enginefix import SHORT_TONE, Rig
from tests.test_xmlcdr_import import FILES, INBOUND

NEW = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, welcome_handler(SHORT_TONE))
    yield r
    r.stop()


def test_the_import_parses_in_a_worker_while_the_hub_runs_and_still_writes_the_cdr(rig, monkeypatch):
    cdr_dir = rig.settings.switch.cdr_dir
    cdr_dir.mkdir(parents=True, exist_ok=True)
    text = (FILES / f"a_{INBOUND}.cdr.xml").read_text().replace(INBOUND, NEW)
    text = text.replace("<destination_number>7002</destination_number>",
                        "<destination_number>12345</destination_number>")
    text = text.replace("<variables>", f"<variables><{xmlcdr.ENGINE_VARIABLE}>{rig.engine.engine_id}"
                                       f"</{xmlcdr.ENGINE_VARIABLE}>", 1)
    (cdr_dir / f"a_{NEW}.cdr.xml").write_text(text)
    # parse() waits on a native lock that only a greenlet on the hub releases: it gets it only if
    # the hub is free while the import parses (on the hub it would wait its 5 s out, and fail)
    gate = monkey.get_original("_thread", "allocate_lock")()
    gate.acquire()
    got_gate = []
    real_parse = xmlcdr.parse

    def gated_parse(data):
        got_gate.append(gate.acquire(timeout=5))
        return real_parse(data)
    monkeypatch.setattr(xmlcdr, "parse", gated_parse)
    releaser = gevent.spawn(gate.release)
    assert rig.engine._import_switch_cdrs() == 1
    releaser.join()
    assert got_gate == [True]
    cdr = rig.engine.store.get(NEW)
    assert cdr is not None and "from_switch_cdr" in cdr["tags"]
    assert (cdr_dir / "done" / f"a_{NEW}.cdr.xml").exists()
