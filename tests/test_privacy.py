"""Issue 17 section 5: callers' ID and card numbers are masked everywhere, kept in clear only
encrypted, and shown in clear only to whom it may concern, with an audit row each time."""
import io
import json
import logging
import sqlite3

import pytest

from engine import privacy
from engine.cdr.store import CdrStore
from engine.cli import main
from engine.ivr.runtime import IvrRuntime
from engine.privacy.access import AccessRefused, audit_rows, reveal_cdr
from tests.ivrfakes import FakeCall, FakeRenderer, at, cn_id
from tests.test_ivr_flows import FLOWS

ID = cn_id("33010619900101123")            # 33010619900101123X
ID2 = cn_id("11010119900307777")
CARD = "6222021234567890128"                # Luhn-valid 19 digits
SPOKEN = ID.translate(str.maketrans("0123456789", "零一二三四五六七八九"))


@pytest.fixture
def key(monkeypatch):
    k = privacy.new_key()
    monkeypatch.setenv(privacy.KEY_ENV, k)
    return k


@pytest.fixture
def store(tmp_path):
    s = CdrStore(f"sqlite:///{tmp_path / 'cdr.db'}", tmp_path / "spool")
    s.open()
    yield s
    s.close()


def test_detection_and_masking():
    assert privacy.mask_text(f"id {ID} ok") == "id 3301**********123X ok"
    assert privacy.mask_text(f"卡号{CARD}。") == "卡号6222***********0128。"
    assert privacy.mask_text(f"我的身份证是{SPOKEN}") == "我的身份证是三三零一**********一二三X"
    assert privacy.mask_text(" ".join(SPOKEN)) == "三三零一**********一二三X"      # the recogniser's spacing
    assert privacy.mask_text("4111 1111 1111 1111") == "4111********1111"
    assert privacy.mask_text(f"id {ID2} 5 tries") == f"id {ID2[:4]}**********{ID2[-4:]} 5 tries"
    assert privacy.mask_text(f"/pension?id={ID2}&x=1") == f"/pension?id={ID2[:4]}**********{ID2[-4:]}&x=1"
    # not personal numbers: a mobile number, a number failing its checksum, a longer run, a uuid
    for text in ("13800138000", ID2[:-1] + ("0" if ID2[-1] != "0" else "1"), "1" + ID2 + "5",
                 "5a526d21-79bd-4c66-bf19-04966c98e425", "6222021234567890127"):
        assert privacy.mask_text(text) == text, text


def test_sealed_copies_need_the_key(key, monkeypatch):
    token = privacy.seal({"x": ID})
    assert ID not in token and privacy.unseal(token) == {"x": ID}
    monkeypatch.setenv(privacy.KEY_ENV, privacy.new_key())
    with pytest.raises(privacy.PrivacyError):
        privacy.unseal(token)
    monkeypatch.setenv(privacy.KEY_ENV, "not a key")
    with pytest.raises(privacy.PrivacyError):
        privacy.check_key()


def _record(uuid="c1"):
    return {"uuid": uuid, "caller_number": "13800138000", "caller_name": "张三",
            "start_time": "2026-12-04T08:00:00+00:00", "end_time": "2026-12-04T08:01:00+00:00",
            "ivr_path": [{"node": "si:ask_id", "digits": ID + "#"}],
            "bot_transcript": [{"who": "caller", "text": f"我的身份证号是{SPOKEN}"},
                               {"who": "bot", "text": f"您说的是{SPOKEN}，对吗？"}],
            "extra": {"lookup_url": f"http://biz/pension?id={ID}", "bot": {"slots": {"id_number": ID}},
                      "card": CARD}}


def _raw_database_text(tmp_path):
    with sqlite3.connect(tmp_path / "cdr.db") as db:
        rows = db.execute("SELECT * FROM cdr").fetchall() + db.execute("SELECT * FROM outbox").fetchall()
    return json.dumps(rows, ensure_ascii=False, default=str)


def test_cdr_fields_are_stored_masked_and_encrypted_and_revealed_with_an_audit_row(tmp_path, store, key):
    """Before: bot_transcript and extra held the ID and card numbers in clear (the outbox too, so
    tickets copied them)."""
    assert store.write(_record())
    raw = _raw_database_text(tmp_path)
    for clear in (ID, SPOKEN, CARD):
        assert clear not in raw
    cdr = store.get("c1")
    assert cdr["bot_transcript"][0]["text"] == "我的身份证号是三三零一**********一二三X"
    assert cdr["extra"]["bot"]["slots"]["id_number"] == "3301**********123X"
    assert cdr["extra"]["card"] == "6222***********0128"
    assert cdr["ivr_path"][0]["digits"] == "3301**********123X#"
    assert cdr["caller_name"] == "张三" and cdr["caller_number"] == "13800138000"
    (entry,) = store.outbox_take("tickets")
    assert ID not in json.dumps(entry["payload"], ensure_ascii=False)
    with pytest.raises(AccessRefused):
        reveal_cdr(store, "c1", "cli:alice", "  ", via="cli")
    assert audit_rows(store) == []
    clear = reveal_cdr(store, "c1", "cli:alice", "caller asked for a correction", via="cli")
    assert clear["extra"]["bot"]["slots"]["id_number"] == ID and clear["extra"]["card"] == CARD
    assert clear["bot_transcript"][0]["text"] == f"我的身份证号是{SPOKEN}"
    assert clear["ivr_path"][0]["digits"] == ID + "#"
    (row,) = audit_rows(store, call_uuid="c1")
    assert (row["actor"], row["via"], row["reason"]) == ("cli:alice", "cli", "caller asked for a correction")
    assert row["fields"] == ["bot_transcript", "extra", "ivr_path"]


def test_without_a_key_only_the_masked_form_is_kept(tmp_path, store, monkeypatch):
    monkeypatch.delenv(privacy.KEY_ENV, raising=False)
    assert store.write(_record())
    assert ID not in _raw_database_text(tmp_path)
    assert privacy.SEALED_KEY not in store.get("c1")["extra"]
    with pytest.raises(privacy.PrivacyError):
        privacy.unseal("whatever")


def test_cli_show_masks_and_reveals_with_a_reason(tmp_path, key, capsys, monkeypatch):
    config = tmp_path / "hotline.yaml"
    config.write_text(f"trunk: {{dids: ['12345']}}\npaths: {{var_dir: {tmp_path / 'var'}}}\n")
    from engine.settings import load_settings
    settings = load_settings(config, env={"HOTLINE_ESL_PASSWORD": "x"})
    s = CdrStore(settings.database.url, settings.paths.cdr_spool)
    s.open()
    s.write(_record())
    s.close()
    assert main(["cdr", "show", "c1", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert ID not in out and "3301**********123X" in out
    assert main(["cdr", "show", "c1", "--config", str(config), "--reveal"]) == 1
    assert "reason" in capsys.readouterr().err
    assert main(["cdr", "show", "c1", "--config", str(config), "--reveal", "--reason", "ticket 7"]) == 0
    assert ID in capsys.readouterr().out
    assert main(["privacy", "audit", "--config", str(config), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["reason"] == "ticket 7" and row["via"] == "cli" and row["call_uuid"] == "c1"


def test_log_lines_are_masked_including_failed_lookup_urls(tmp_path):
    """Before: `lookup http://.../pension/contributions?id=<ID> failed: ...` in clear in the
    daemon's log. The daemon's log set-up masks every line."""
    from engine.daemon import setup_logging
    from engine.settings import default_settings
    settings = default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"},
                                log={"file": str(tmp_path / "engine.log")})
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    setup_logging(settings)
    try:
        rt = IvrRuntime(FLOWS, FakeRenderer())
        assert rt.reload() == []
        call = FakeCall("12345", ["1", "1", "1", "1", "1", ID2 + "#"], at("2026-10-12 10:00"))
        call.variables["biz_base_url"] = "http://127.0.0.1:1"
        rt.run(call)
        logging.getLogger("hotline.test").warning("caller said %s", SPOKEN)
    finally:
        for h in root.handlers:
            h.close()
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    text = (tmp_path / "engine.log").read_text(encoding="utf-8")
    assert "lookup http://127.0.0.1:1/" in text and f"{ID2[:4]}**********{ID2[-4:]}" in text
    assert ID2 not in text and SPOKEN not in text and "caller said 三三零一" in text


def test_per_call_readbacks_are_not_offered_to_the_online_tts():
    renderer = FakeRenderer()
    rt = IvrRuntime(FLOWS, renderer)
    assert rt.reload() == []
    assert "您好，欢迎致电12345政务服务便民热线。" in renderer.online      # a fixed prompt, ahead of time
    from tests.ivrfakes import BizServer
    biz = BizServer({ID2: {"paid_through": "2026年9月", "months": 180}})
    try:
        call = FakeCall("12345", ["1", "1", "1", "1", "1", ID2 + "#"], at("2026-10-12 10:00"))
        call.variables["biz_base_url"] = biz.url
        result = rt.run(call)
    finally:
        biz.stop()
    assert "您的养老保险已缴费至2026年9月。" in result["heard"]
    per_call = [t for t in renderer.rendered if t not in renderer.online]
    assert "您的养老保险已缴费至2026年9月。" in per_call
    assert "您的养老保险已缴费至2026年9月。" not in renderer.online


def test_bot_speaks_only_its_own_file_texts_online():
    from engine.bot.playback import fixed_sentences
    from types import SimpleNamespace
    bot = SimpleNamespace(greeting="您好，请问有什么可以帮您？", answers={"a": "养老保险可以在银行缴纳。"},
                          messages={"handoff": "正在为您转接人工。", "confirm": "您说的是{value}，对吗？"},
                          intents={}, faq={})
    fixed = fixed_sentences(bot)
    assert "您好，请问有什么可以帮您？" in fixed and "正在为您转接人工。" in fixed
    assert not any("{" in s for s in fixed)
    assert f"您说的是{SPOKEN}，对吗？" not in fixed


def test_bot_misses_file_keeps_no_clear_id(tmp_path):
    from engine.bot import misses
    misses.append(tmp_path, {"bot": "b", "call": "c", "text": f"我的身份证是{SPOKEN}", "kind": "unknown"})
    text = (tmp_path / f"b{misses.SUFFIX}").read_text(encoding="utf-8")
    assert SPOKEN not in text and "三三零一**********一二三X" in text


def test_control_api_masks_for_supervisors_and_reveals_to_the_reveal_role_with_audit(tmp_path, store, key):
    from types import SimpleNamespace

    from engine.settings import TokenSettings, default_settings
    from engine.web.app import create_app
    settings = default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"})
    tokens = (TokenSettings(name="ops", role="supervisor", token_env="T1", token="sup"),
              TokenSettings(name="root", role="admin", token_env="T2", token="adm"),
              TokenSettings(name="desk", role="agent", token_env="T3", agent="1001", token="agt"))
    client = create_app(SimpleNamespace(store=store, settings=settings, acd=None), lambda: tokens).test_client()
    store.write(_record())

    def request(method, path, token, body=None):
        answer = client.open(path, method=method, headers={"Authorization": f"Bearer {token}"},
                             json=body if body is not None else None)
        return answer.status_code, answer.get_json()

    status, body = request("GET", "/v1/cdrs/c1", "sup")
    assert status == 200 and ID not in json.dumps(body, ensure_ascii=False)
    assert privacy.SEALED_KEY not in body["cdr"]["extra"]
    assert request("GET", "/v1/cdrs/c1", "agt")[0] == 403
    assert request("POST", "/v1/cdrs/c1/reveal", "sup", {"reason": "x"})[0] == 403    # reveal_role admin
    assert request("POST", "/v1/cdrs/c1/reveal", "adm", {})[0] == 400                 # no reason
    assert audit_rows(store) == []
    status, body = request("POST", "/v1/cdrs/c1/reveal", "adm", {"reason": "complaint 42"})
    assert status == 200 and body["cdr"]["extra"]["bot"]["slots"]["id_number"] == ID
    (row,) = audit_rows(store)
    assert (row["actor"], row["via"], row["reason"]) == ("api:admin:root", "api", "complaint 42")
    assert request("POST", "/v1/cdrs/nope/reveal", "adm", {"reason": "r"})[0] == 404


def test_ticket_text_typed_by_an_agent_is_stored_masked(tmp_path):
    from tests.ticketfix import ticket_store
    store = ticket_store(tmp_path)
    t = store.create(kind="agent", category="consultation", summary=f"来电人身份证{ID}，卡号{CARD}", who="1001")
    assert ID not in t["summary"] and CARD not in t["summary"] and "3301**********123X" in t["summary"]
    store.transition(t["number"], "withdrawn", who="1001", note=f"重复工单，身份证{ID}")
    assert ID not in json.dumps(store.history(t["number"]), ensure_ascii=False, default=str)
    with sqlite3.connect(tmp_path / "hotline.db") as db:
        raw = json.dumps([db.execute(f"SELECT * FROM {t}").fetchall() for (t,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")], ensure_ascii=False, default=str)
    assert ID not in raw and CARD not in raw


def test_the_switch_cdr_kept_in_done_has_no_clear_id(tmp_path, store):
    """The caller's leg carries the bot's slots for the agent's screen (hotline_bot_slots, in
    clear); mod_xml_cdr writes them into its file, which the import kept in done/ as it was."""
    from pathlib import Path
    from urllib.parse import quote

    from engine.cdr.xmlcdr import import_dir
    fixtures = Path(__file__).parent / "fixtures" / "esl" / "11-xml-cdr-legs.files"
    inbound = "9669622a-9119-45ad-9629-f8c364d95b22"
    cdr_dir = tmp_path / "fs-cdr"
    cdr_dir.mkdir()
    slots = quote(json.dumps({"id_number": ID}), safe="")
    text = (fixtures / f"a_{inbound}.cdr.xml").read_text()
    text = text.replace("<variables>", f"<variables><hotline_bot_slots>{slots}</hotline_bot_slots>", 1)
    (cdr_dir / f"a_{inbound}.cdr.xml").write_text(text)
    assert import_dir(store, str(cdr_dir), {"7002"}, engine_id="host-a:8084") == 1
    kept = (cdr_dir / "done" / f"a_{inbound}.cdr.xml").read_text(encoding="utf-8")
    assert ID not in kept and quote("3301**********123X", safe="") in kept
    from engine.cdr.xmlcdr import parse
    assert parse(kept).uuid == inbound          # still a switch CDR the tools can read
