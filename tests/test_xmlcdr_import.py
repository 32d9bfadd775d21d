"""Importing the switch's own CDR files: only this engine's trunk legs (issue 14 point 4, issue 19
point 3), from the real switch's files of fixture 11 and from the simulator's."""
import shutil
from pathlib import Path

import pytest

from engine.cdr.store import CdrStore
from engine.cdr.xmlcdr import import_dir, parse
from tests.acdfix import AcdRig, agent, queue, wait_for

FILES = Path(__file__).parent / "fixtures" / "esl" / "11-xml-cdr-legs.files"
INBOUND = "9669622a-9119-45ad-9629-f8c364d95b22"     # the DID leg: direction inbound, public, external
CALLER = "5a526d21-79bd-4c66-bf19-04966c98e425"      # the rig's caller: outbound, default, to the DID
CONSULT = "395225e5-e74b-4652-8b51-630f0558f9f4"     # originated by API with hotline_role=consult
ME, OTHER = "host-a:8084", "host-b:8084"


@pytest.fixture
def store(tmp_path):
    s = CdrStore(f"sqlite:///{tmp_path / 'cdr.db'}", tmp_path / "spool")
    s.open()
    yield s
    s.close()


@pytest.fixture
def cdr_dir(tmp_path):
    d = tmp_path / "fs-cdr"
    d.mkdir()
    for f in FILES.glob("a_*.cdr.xml"):
        shutil.copy(f, d / f.name)
    return d


def _variant(cdr_dir, uuid, new_uuid, extra_vars="", destination=None):
    """A copy of the real inbound leg's file as another call (new uuid, more variables)."""
    text = (FILES / f"a_{INBOUND}.cdr.xml").read_text().replace(INBOUND, new_uuid)
    text = text.replace("<variables>", f"<variables>{extra_vars}", 1)
    if destination:
        text = text.replace("<destination_number>7002</destination_number>",
                            f"<destination_number>{destination}</destination_number>")
    path = cdr_dir / f"a_{new_uuid}.cdr.xml"
    path.write_text(text)
    return path


def test_only_the_inbound_trunk_leg_of_fixture_11_becomes_a_cdr_and_the_rest_is_left(store, cdr_dir):
    """The real switch wrote three files for one DID call; two are not trunk calls (the rig's
    outbound caller leg to the DID, and an API-originated consult leg)."""
    assert import_dir(store, str(cdr_dir), {"7002"}, engine_id=ME) == 1
    assert [c["uuid"] for c in store.list()] == [INBOUND]
    cdr = store.get(INBOUND)
    assert cdr["destination"] == "7002" and cdr["caller_number"] == "15550000111"
    assert cdr["caller_name"] == "ESL Fixture s11" and cdr["billsec"] == 5
    assert "from_switch_cdr" in cdr["tags"]
    assert sorted(p.name for p in cdr_dir.glob("*.cdr.xml")) == [f"a_{CONSULT}.cdr.xml", f"a_{CALLER}.cdr.xml"]
    assert (cdr_dir / "done" / f"a_{INBOUND}.cdr.xml").exists()
    assert import_dir(store, str(cdr_dir), {"7002"}, engine_id=ME) == 0       # nothing twice


def test_a_prefixed_file_of_a_live_call_is_left_for_the_next_pass(store, cdr_dir):
    """The uuid comes from the file: `a_<uuid>.cdr.xml` of a call still up is not imported."""
    assert import_dir(store, str(cdr_dir), {"7002"}, live_uuids={INBOUND}, engine_id=ME) == 0
    assert store.list() == []
    assert (cdr_dir / f"a_{INBOUND}.cdr.xml").exists()
    assert parse((cdr_dir / f"a_{INBOUND}.cdr.xml").read_text()).uuid == INBOUND


def test_engines_sharing_a_switch_import_and_move_only_their_own_calls(store, cdr_dir):
    ours = _variant(cdr_dir, INBOUND, "10000000-0000-4000-8000-000000000001",
                    f"<hotline_engine>{ME}</hotline_engine>")
    theirs = _variant(cdr_dir, INBOUND, "10000000-0000-4000-8000-000000000002",
                      f"<hotline_engine>{OTHER}</hotline_engine>")
    other_number = _variant(cdr_dir, INBOUND, "10000000-0000-4000-8000-000000000003", destination="7005")
    # no engine mark (its engine died first): the app_log's socket names the engine it dialled
    unmarked_other_socket = _variant(cdr_dir, INBOUND, "10000000-0000-4000-8000-000000000004")
    unmarked_other_socket.write_text(unmarked_other_socket.read_text().replace("127.0.0.1:8084", "127.0.0.1:9999"))
    broken = cdr_dir / "a_10000000-0000-4000-8000-000000000005.cdr.xml"
    broken.write_text("<cdr><variables>")                # half written, or someone else's
    before = {p.name: p.read_bytes() for p in cdr_dir.glob("*.cdr.xml")}
    written = import_dir(store, str(cdr_dir), {"7002"}, engine_id=ME, socket_target="127.0.0.1:8084")
    # ours: the marked one and the unmarked fixture call that dialled our socket
    assert written == 2
    assert sorted(c["uuid"] for c in store.list()) == sorted([INBOUND, "10000000-0000-4000-8000-000000000001"])
    left = {p.name: p.read_bytes() for p in cdr_dir.glob("*.cdr.xml")}
    assert set(left) == {theirs.name, other_number.name, unmarked_other_socket.name, broken.name,
                         f"a_{CALLER}.cdr.xml", f"a_{CONSULT}.cdr.xml"}
    assert all(left[name] == before[name] for name in left)                  # untouched
    assert sorted(p.name for p in (cdr_dir / "done").iterdir()) == sorted([ours.name, f"a_{INBOUND}.cdr.xml"])
    # the other engine takes its own and leaves ours alone (already moved) and the rest
    other_store = CdrStore(f"sqlite:///{cdr_dir.parent / 'other.db'}", cdr_dir.parent / "other-spool")
    other_store.open()
    try:
        assert import_dir(other_store, str(cdr_dir), {"7002"}, engine_id=OTHER,
                          socket_target="127.0.0.1:9999") == 2
        assert sorted(c["uuid"] for c in other_store.list()) == ["10000000-0000-4000-8000-000000000002",
                                                                 "10000000-0000-4000-8000-000000000004"]
    finally:
        other_store.close()


def test_a_switch_cdr_names_queue_agent_and_talk_time_when_the_engine_never_saw_the_end(
        tmp_path, redis_server, redis_prefix):
    """kill -9 style: the CDR comes from the switch's file alone (a store the engine never wrote
    to), and it names the queue and the agent the engine had put on the caller's leg."""
    rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")], [queue("general")])
    try:
        rig.switch.xml_cdr_dir = str(tmp_path / "fs-cdr")
        rig.login("1001", hangup_after=0.5)
        caller = rig.call("13800138000")
        assert caller.wait_hangup(10)
        assert wait_for(lambda: len(rig.cdrs()) == 1)
        engine_cdr = rig.cdrs()[0]
        files = list((tmp_path / "fs-cdr").glob("a_*.cdr.xml"))
        # the caller's leg only: the agent's leg is the bridge's B leg (no file)
        assert [f.name for f in files] == [f"a_{caller.uuid}.cdr.xml"]
        fresh = CdrStore(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path / "fresh-spool")
        fresh.open()
        try:
            assert import_dir(fresh, str(tmp_path / "fs-cdr"), set(rig.settings.trunk.dids),
                              engine_id=rig.engine.engine_id, socket_target=rig.engine.socket_target) == 1
            cdr = fresh.get(caller.uuid)
        finally:
            fresh.close()
        assert cdr["queue"] == "general" and cdr["agent"] == "1001"
        assert cdr["talk_seconds"] == pytest.approx(engine_cdr["talk_seconds"], abs=0.2)
        assert cdr["extra"]["talk_from"] == "switch bridge time"
    finally:
        rig.stop()
