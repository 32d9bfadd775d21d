"""`hotline users passwd|list|disable`: accounts set from a shell, audited, in the engine's database."""
import io

from engine.cdr.store import CdrStore
from engine.cli import main
from engine.settings import load_settings
from engine.web.accounts import Accounts
from tests.acdfix import agent, queue, write_yaml


def config(tmp_path):
    write_yaml(tmp_path / "agents.yaml", {"agents": [agent("1001"), agent("2001", role="supervisor")]})
    write_yaml(tmp_path / "queues.yaml", {"queues": [queue("general")]})
    path = tmp_path / "hotline.yaml"
    path.write_text(f'trunk: {{dids: ["12345"]}}\npaths: {{var_dir: {tmp_path / "var"}}}\n'
                    f"files: {{agents: agents.yaml, queues: queues.yaml}}\n"
                    f"redis: {{url: 'redis://127.0.0.1:1/0'}}\n", encoding="utf-8")
    return path


def accounts(path):
    s = load_settings(path, env={"HOTLINE_ESL_PASSWORD": "x"})
    return Accounts(CdrStore(s.database.url, s.paths.cdr_spool).open(drain=False))


def run(monkeypatch, capsys, *argv, stdin=""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_passwd_creates_with_the_role_of_the_agents_file_then_resets(tmp_path, monkeypatch, capsys):
    cfg = str(config(tmp_path))
    code, out, _ = run(monkeypatch, capsys, "users", "passwd", "2001", "--config", cfg, stdin="boss-pass-1\n")
    assert code == 0 and "2001: created (supervisor)" in out
    code, out, _ = run(monkeypatch, capsys, "users", "passwd", "1001", "--config", cfg, stdin="desk-pass-1\n")
    assert code == 0 and "(agent)" in out
    code, _, err = run(monkeypatch, capsys, "users", "passwd", "stranger", "--config", cfg, stdin="whatever-1\n")
    assert code == 2 and "--role" in err
    code, _, err = run(monkeypatch, capsys, "users", "passwd", "1001", "--config", cfg, stdin="short\n")
    assert code == 1 and "8 to 256" in err
    code, out, err = run(monkeypatch, capsys, "users", "passwd", "1001", "--config", cfg, stdin="desk-pass-2\n")
    assert code == 0 and "password set" in out and "sessions of 1001 not ended" in err   # no Redis here
    acc = accounts(cfg)
    assert acc.authenticate("1001", "desk-pass-1") is None
    assert acc.authenticate("1001", "desk-pass-2")["agent"] == "1001"
    assert [e["action"] for e in acc.audit("1001")] == ["created", "password"]
    assert all(e["actor"].startswith("cli:") for e in acc.audit("1001"))
    code, out, _ = run(monkeypatch, capsys, "users", "disable", "1001", "--config", cfg)
    assert code == 0 and accounts(cfg).authenticate("1001", "desk-pass-2") is None
    code, out, _ = run(monkeypatch, capsys, "users", "list", "--config", cfg)
    assert code == 0 and "1001" in out and "yes" in out and "hash" not in out
