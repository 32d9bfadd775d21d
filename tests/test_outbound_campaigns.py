"""Campaign control and contact lists: create, load (CSV/XLSX, file:line errors, nothing or the
good rows loaded), start/pause/resume/stop rules, claims shared by two engines."""
import openpyxl
import pytest

from engine.outbound import campaigns
from engine.outbound.campaigns import OutboundError
from engine.outbound.contacts import ContactFileError, read_contacts
from tests.outboundfix import claims_for, outbound_db

CSV = "电话,姓名,工单,区县\n13800138000,张三,T20261123-0001,西湖\n138-0013-8001,李四,,滨江\n"


def test_csv_with_chinese_headers_and_free_fields(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(CSV, encoding="utf-8")
    rows, errors = read_contacts(path)
    assert errors == []
    assert [(r["number"], r["name"], r["reference"], r["fields"]) for r in rows] == [
        ("13800138000", "张三", "T20261123-0001", {"区县": "西湖"}),
        ("13800138001", "李四", "", {"区县": "滨江"})]
    assert rows[1]["source"] == f"{path}:3"


def test_bad_rows_are_named_by_line_and_nothing_is_loaded_unless_partial(tmp_path):
    db = outbound_db(tmp_path)
    campaigns.create(db, "fu", "robot", flow="ivr_flows/followup.yaml")
    path = tmp_path / "list.csv"
    path.write_text("number,name\n13800138000,a\nhello,b\n\n13800138000,c\n13900139000,d\n", encoding="utf-8")
    out = campaigns.load(db, "fu", path)
    assert out["loaded"] == 0 and out["loaded_rows"] == "none"
    assert [e.split(" ", 1)[0] for e in out["errors"]] == [f"{path}:3:", f"{path}:5:"]
    assert "'hello'" in out["errors"][0]
    assert out["errors"][1] == f"{path}:5: number 13800138000 already on line 2"
    assert campaigns.show(db, "fu")["contacts"]["total"] == 0
    out = campaigns.load(db, "fu", path, partial=True)
    assert out["loaded"] == 2 and out["loaded_rows"] == "good rows only" and len(out["errors"]) == 2
    again = campaigns.load(db, "fu", path, partial=True)     # a second load adds nobody twice
    assert again["loaded"] == 0 and again["skipped_existing"] == 2


def test_xlsx_and_gbk_csv(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["号码", "姓名", "备注"])
    sheet.append([13800138000, "王五", "复查"])
    sheet.append([None, None, None])
    sheet.append(["12", "x", ""])
    book.save(tmp_path / "l.xlsx")
    rows, errors = read_contacts(tmp_path / "l.xlsx")
    assert [(r["number"], r["name"], r["fields"]) for r in rows] == [("13800138000", "王五", {"备注": "复查"})]
    assert [e.split(" ", 1)[0] for e in errors] == [f"{tmp_path / 'l.xlsx'}:4:"]
    (tmp_path / "g.csv").write_bytes("电话,姓名\n13800138000,赵六\n".encode("gb18030"))
    rows, _ = read_contacts(tmp_path / "g.csv")
    assert rows[0]["name"] == "赵六"
    with pytest.raises(ContactFileError, match="no number column"):
        (tmp_path / "n.csv").write_text("name\nx\n")
        read_contacts(tmp_path / "n.csv")
    with pytest.raises(ContactFileError, match="unknown format"):
        (tmp_path / "x.txt").write_text("number\n1\n")
        read_contacts(tmp_path / "x.txt")


def test_control_moves_and_refusals(tmp_path):
    db = outbound_db(tmp_path)
    with pytest.raises(OutboundError, match="needs --queue"):
        campaigns.create(db, "a", "progressive")
    campaigns.create(db, "a", "progressive", queue="pension", priority=2)
    with pytest.raises(OutboundError, match="exists already"):
        campaigns.create(db, "a", "preview", queue="pension")
    with pytest.raises(OutboundError, match="cannot pause"):
        campaigns.control(db, "a", "pause")
    assert campaigns.control(db, "a", "start")["state"] == "running"
    assert campaigns.control(db, "a", "pause")["state"] == "paused"
    assert campaigns.control(db, "a", "resume")["state"] == "running"
    assert campaigns.control(db, "a", "stop")["state"] == "stopped"
    with pytest.raises(OutboundError, match="no campaign"):
        campaigns.control(db, "zz", "start")


def test_two_engines_never_claim_one_contact(tmp_path, redis_server, redis_prefix):
    db_a, db_b = outbound_db(tmp_path), outbound_db(tmp_path)      # two connections, one database
    campaigns.create(db_a, "c", "progressive", queue="q")
    rows = [{"number": f"1380013{i:04d}"} for i in range(60)]
    campaigns.add_contacts(db_a, "c", rows)
    a = claims_for(db_a, redis_server, redis_prefix, "engine-a")
    b = claims_for(db_b, redis_server, redis_prefix, "engine-b")
    import gevent
    got = {"a": [], "b": []}

    def grab(name, claims):
        while True:
            ids = claims.claim("contact", limit=3)
            if not ids:
                return
            got[name] += ids
            gevent.sleep(0)
    gevent.joinall([gevent.spawn(grab, "a", a), gevent.spawn(grab, "b", b)], timeout=30, raise_error=True)
    assert len(got["a"]) + len(got["b"]) == 60
    assert not set(got["a"]) & set(got["b"])
    assert got["a"] and got["b"]
    assert a.redis.get(a.key("contact", got["a"][0])) == "engine-a"


def test_dead_owner_contacts_go_back_to_pending(tmp_path, redis_server, redis_prefix):
    from tests.ticketfix import Clock
    clock = Clock()
    db = outbound_db(tmp_path, clock)
    campaigns.create(db, "c", "progressive", queue="q")
    campaigns.add_contacts(db, "c", [{"number": "13800138000"}, {"number": "13800138001"}])
    dead = claims_for(db, redis_server, redis_prefix, "engine-dead", ttl=30)
    alive = claims_for(db, redis_server, redis_prefix, "engine-new", ttl=30)
    from engine.outbound import attempts
    [cid] = dead.claim("contact", limit=1)
    row = campaigns.contacts(db, "c", state="claimed")[0]
    attempt = attempts.begin(db, "contact", row, engine="engine-dead")
    assert alive.reap("contact") == []                 # its lock lives: not an orphan
    dead.redis.delete(dead.key("contact", cid))         # the owner died: its lock expired
    assert alive.reap("contact") == []                 # claimed less than a TTL ago: not yet
    clock.advance(seconds=31)
    assert alive.reap("contact") == [cid]
    back = [c for c in campaigns.contacts(db, "c") if c["id"] == cid][0]
    assert back["state"] == "pending" and back["attempts"] == 1
    assert attempts.attempts_of(db, "contact", cid)[0]["result"] == "lost"
    assert attempt
    assert not dead.release("contact", cid, state="done")     # too late: nothing overwritten
    assert [c["state"] for c in campaigns.contacts(db, "c") if c["id"] == cid] == ["pending"]
