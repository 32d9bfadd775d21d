"""`hotline lists ...` in-process against a settings file's database."""
import json

from tests.clifix import run_cli, write_config


def test_add_show_remove_with_json_and_hits(tmp_path, capsys):
    cfg, _ = write_config(tmp_path)
    rc, out, err = run_cli(capsys, "lists", "add", "blacklist", "+86 138 0013 8000", "--reason", "骚扰",
                           "--action", "queue", "--config", cfg, "--by", "admin")
    assert rc == 0 and "13800138000 added" in out, err
    rc, out, _ = run_cli(capsys, "lists", "add", "block", "0755*", "--config", cfg)
    assert rc == 0
    rc, out, _ = run_cli(capsys, "lists", "show", "blacklist", "--config", cfg)
    assert rc == 0 and "13800138000" in out and "queue" in out and "骚扰" in out and "1 entry" in out
    rc, out, _ = run_cli(capsys, "lists", "show", "blacklist", "--config", cfg, "--json")
    rows = json.loads(out)
    assert rows[0]["number"] == "13800138000" and rows[0]["hits"] == 0 and rows[0]["added_by"] == "admin"
    rc, out, err = run_cli(capsys, "lists", "remove", "block", "0755*", "--config", cfg)
    assert rc == 0
    rc, out, err = run_cli(capsys, "lists", "remove", "block", "0755*", "--config", cfg)
    assert rc == 1 and "not on the block list" in err


def test_bad_number_and_bad_import_rows_are_clear_errors(tmp_path, capsys):
    cfg, _ = write_config(tmp_path)
    rc, out, err = run_cli(capsys, "lists", "add", "dnc", "12345abc", "--config", cfg)
    assert rc == 1 and "is not a digit" in err and "Traceback" not in err
    csv_file = tmp_path / "dnc.csv"
    csv_file.write_text("number,reason,expires,extra\n13800138000,asked,,c1\n1380013800,typo,,\n", encoding="utf-8")
    rc, out, err = run_cli(capsys, "lists", "import", "dnc", csv_file, "--config", cfg)
    assert rc == 1 and f"{csv_file}:3:" in err and "nothing imported" in err
    csv_file.write_text("number,reason,expires,extra\n13800138000,asked,,c1\n13900000000,,2027-01-01,\n",
                        encoding="utf-8")
    rc, out, err = run_cli(capsys, "lists", "import", "dnc", csv_file, "--config", cfg)
    assert rc == 0 and "2 entries imported" in out
    out_file = tmp_path / "out.csv"
    rc, out, err = run_cli(capsys, "lists", "export", "dnc", "--out", out_file, "--config", cfg)
    text = out_file.read_text(encoding="utf-8")
    assert rc == 0 and "13800138000,asked,,c1" in text and "13900000000,,2027-01-01," in text


def test_check_says_what_each_list_says_of_a_number(tmp_path, capsys):
    cfg, _ = write_config(tmp_path, 'outbound_calls: {dial_block: {transfer_allow: ["110"]}}\n')
    run_cli(capsys, "lists", "add", "blacklist", "0755*", "--action", "queue", "--reason", "spam", "--config", cfg)
    run_cli(capsys, "lists", "add", "dnc", "075512345678", "--campaign", "c1", "--config", cfg)
    rc, out, err = run_cli(capsys, "lists", "check", "0755-12345678", "--campaign", "c1", "--config", cfg)
    assert rc == 0, err
    assert "0755* -> queue (spam)" in out and "do-not-call:       yes" in out and "dial out:          allowed" in out
    rc, out, _ = run_cli(capsys, "lists", "check", "110", "--config", cfg, "--json")
    found = json.loads(out)
    assert found["blocked_outbound"] and found["blocked_transfer"] is None and found["blacklist"] is None
    rc, out, _ = run_cli(capsys, "lists", "show", "block", "--config", cfg)
    assert "allowed for transfers 110" in out
