"""The number lists in the database and the dial-block list from settings."""
import datetime

import pytest

from engine.outbound.config import DialBlockSettings
from engine.outbound.dialblock import DialBlock
from engine.outbound.lists import ListError, NumberLists
from tests.acdfix import AcdRig, queue


@pytest.fixture
def lists(tmp_path):
    now = [datetime.datetime(2026, 12, 8, 2, 0)]
    store = NumberLists(f"sqlite:///{tmp_path / 'lists.db'}", clock=lambda: now[0]).open()
    store.now = now
    yield store
    store.close()


def test_entries_numbers_prefixes_expiry_and_campaigns(lists):
    lists.add("blacklist", "+86 138 0013 8000", reason="abuse", added_by="admin")
    lists.add("blacklist", "0755*", action="queue", expires="2026-12-10")
    lists.add("dnc", "13900000000", campaign="survey")
    lists.add("dnc", "13700000000")
    lists.reload()
    assert lists.blacklist_hit("13800138000")["action"] == "message"
    assert lists.blacklist_hit("075512345678")["number"] == "0755*"
    assert lists.blacklist_hit("13900000000") is None
    assert lists.is_dnc("13900000000", "survey") and not lists.is_dnc("13900000000", "other")
    assert lists.is_dnc("+8613700000000", "anything")          # '' = every campaign
    lists.now[0] = datetime.datetime(2026, 12, 10, 0, 0)       # the prefix entry expired
    assert lists.blacklist_hit("075512345678") is None
    assert lists.remove("dnc", "13700000000") and not lists.remove("dnc", "13700000000")
    lists.reload()
    assert not lists.is_dnc("13700000000")


def test_optout_is_effective_at_once(lists):
    assert not lists.is_dnc("13800138000", "c1")
    lists.add_from_optout("13800138000", "c1")
    assert lists.is_dnc("13800138000", "c1") and not lists.is_dnc("13800138000", "c2")
    assert lists.entries("dnc")[0]["reason"] == "opt-out key"


def test_bad_entries_are_refused_with_the_reason(lists):
    with pytest.raises(ListError, match="11 digits"):
        lists.add("blacklist", "1380013800")
    with pytest.raises(ListError, match="action"):
        lists.add("blacklist", "13800138000", action="drop")
    with pytest.raises(ListError, match="YYYY-MM-DD"):
        lists.add("dnc", "13800138000", expires="next week")
    with pytest.raises(ListError, match="unknown list"):
        lists.add("whitelist", "13800138000")
    assert lists.entries("blacklist") == [] and lists.entries("dnc") == []


def test_import_is_all_or_nothing_with_file_and_line(lists, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("number,reason,expires,extra\n13800138000,abuse,,queue\n0755*,spam,2027-01-01,\n",
                    encoding="utf-8")
    assert lists.import_file("blacklist", good) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("13900000001,ok\n139000,short\n13900000003,x,2026-13-01\n", encoding="utf-8")
    with pytest.raises(ListError) as e:
        lists.import_file("blacklist", bad)
    assert f"{bad}:2:" in str(e.value) and f"{bad}:3:" in str(e.value)
    assert len(lists.entries("blacklist")) == 2                  # nothing of the bad file
    rows = lists.export_rows("blacklist")
    assert rows[0][:4] == ["number", "reason", "expires", "extra"]
    assert sorted(r[0] for r in rows[1:]) == ["0755*", "13800138000"]


def test_dial_block_list_from_settings():
    default = DialBlock()
    assert default.refuses("110", "transfer") and default.refuses("0085212345678")
    assert default.refuses("19001234") and not default.refuses("11012345678")
    hotline = DialBlock(DialBlockSettings(transfer_allow=("110", "119", "120")))
    assert hotline.refuses("110", "transfer") is None
    assert hotline.refuses("110", "outbound") and hotline.refuses("122", "transfer")
    custom = DialBlock(DialBlockSettings(prefixes=("/0571\\d{8}/",)))
    assert custom.refuses("057112345678") and not custom.refuses("0085212345678")


def test_agents_transfer_to_emergency_numbers_follows_the_settings(tmp_path, redis_server, redis_prefix):
    from engine.acd.incall import ControlError
    rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [], [queue("general")],
                 outbound_calls={"dial_block": {"transfer_allow": ["110", "119", "120"]}})
    try:
        assert rig.acd.incall.target("external:110") == ("external", "110")
        with pytest.raises(ControlError) as e:
            rig.acd.incall.target("external:122")
        assert e.value.status == 403 and "dial_block" in str(e.value)
    finally:
        rig.stop()


def test_import_of_a_file_that_is_not_utf8_csv_is_refused_clearly(lists, tmp_path):
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("13800138000,骚扰\n".encode("gbk"))
    with pytest.raises(ListError, match="not UTF-8 text.*CSV UTF-8"):
        lists.import_file("blacklist", gbk)
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"13800138000,a\n13900000000,\x00b\n")
    with pytest.raises(ListError, match=r"nul.csv:2: a control character"):
        lists.import_file("blacklist", nul)
    many = tmp_path / "many.csv"
    many.write_text("".join(f"1380013{i:04d},x\n" for i in range(3000)) + "1380013800,bad\n", encoding="utf-8")
    with pytest.raises(ListError, match=r"many.csv:3001: "):
        lists.import_file("blacklist", many)
    assert lists.entries("blacklist") == []
    many.write_text("".join(f"1380013{i:04d},x\n" for i in range(3000)), encoding="utf-8")
    assert lists.import_file("blacklist", many) == 3000 and len(lists.entries("blacklist")) == 3000
