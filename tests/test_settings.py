import re
from pathlib import Path

import pytest

from engine.settings import (SettingsError, default_settings, load_settings, reloadable_diff,
                             schema_paths)

REPO = Path(__file__).resolve().parent.parent
ENV = {"HOTLINE_ESL_PASSWORD": "s3cret"}


def write(tmp_path, text, name="hotline.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def error_of(path, env=ENV):
    with pytest.raises(SettingsError) as exc:
        load_settings(path, env=env)
    return str(exc.value)


def test_shipped_file_loads_and_resolves_paths_against_its_directory():
    s = load_settings(REPO / "etc" / "hotline.yaml", env=ENV)
    assert s.esl.password == "s3cret"
    assert s.paths.var_dir == REPO / "var"
    assert s.paths.cdr_spool == REPO / "var" / "spool"
    assert s.files.agents == REPO / "etc" / "agents.yaml"
    assert s.database.url == f"sqlite:///{REPO / 'var' / 'hotline.db'}"
    assert s.trunk.dids == ("12345", "12333")
    assert s.outbound.advertise_host == "127.0.0.1" and s.outbound.listen_port == 8084


def test_shipped_file_documents_every_setting():
    text = (REPO / "etc" / "hotline.yaml").read_text(encoding="utf-8")
    for path in schema_paths():
        key = path.rsplit(".", 1)[-1]
        assert re.search(rf"^\s*{key}:", text, re.M), f"{path} is not documented in etc/hotline.yaml"


def test_wrong_type_names_setting_and_line(tmp_path):
    p = write(tmp_path, 'trunk:\n  dids: ["1"]\nesl:\n  host: h\n  port: eighty\n')
    msg = error_of(p)
    assert msg.startswith(f"{p}:5:3: esl.port:")
    assert "integer" in msg and "eighty" in msg


def test_unknown_key_is_refused_with_a_suggestion(tmp_path):
    p = write(tmp_path, 'trunk:\n  dids: ["1"]\nesl:\n  prot: 8021\n')
    msg = error_of(p)
    assert f"{p}:4:3: esl.prot: unknown setting" in msg and "did you mean 'port'" in msg


def test_unknown_section_is_refused(tmp_path):
    msg = error_of(write(tmp_path, 'trunk:\n  dids: ["1"]\nredsi:\n  url: x\n'))
    assert ":3:1: redsi: unknown setting" in msg and "'redis'" in msg


def test_missing_required_value(tmp_path):
    msg = error_of(write(tmp_path, "trunk:\n  gateway: carrier\n"))
    assert ":1:1: trunk.dids: required setting is missing" in msg


def test_empty_file_says_what_is_missing(tmp_path):
    assert "trunk: required setting is missing" in error_of(write(tmp_path, ""))


def test_unquoted_number_for_text_is_refused(tmp_path):
    msg = error_of(write(tmp_path, "trunk:\n  dids:\n    - 12345\n"))
    assert ":3:7: trunk.dids[0]:" in msg and 'quote it: "12345"' in msg


def test_bounds_and_choices(tmp_path):
    assert "must be at most 65535" in error_of(write(tmp_path, 'trunk: {dids: ["1"]}\nesl: {port: 70000}\n'))
    assert "must be one of DEBUG" in error_of(write(tmp_path, 'trunk: {dids: ["1"]}\nlog: {level: LOUD}\n'))
    assert "at least 1 item" in error_of(write(tmp_path, "trunk: {dids: []}\n"))


def test_yaml_syntax_error_has_position(tmp_path):
    msg = error_of(write(tmp_path, 'trunk:\n  dids: ["1"\nesl: {}\n'))
    assert re.match(rf"{re.escape(str(tmp_path))}/hotline.yaml:\d+:\d+: invalid YAML", msg)


def test_duplicate_key_is_an_error(tmp_path):
    msg = error_of(write(tmp_path, 'trunk: {dids: ["1"]}\nesl: {port: 1}\nesl: {port: 2}\n'))
    assert "hotline.yaml:" in msg and "invalid YAML" in msg


def test_esl_password_from_named_variable_and_fallback_only_when_allowed(tmp_path):
    p = write(tmp_path, 'trunk: {dids: ["1"]}\nesl:\n  password_env: MY_PW\n')
    assert load_settings(p, env={"MY_PW": "pw"}).esl.password == "pw"
    msg = error_of(p, env={})
    assert ":3:3: esl.password_env: environment variable MY_PW is not set" in msg
    p = write(tmp_path, 'trunk: {dids: ["1"]}\nesl: {allow_default_password: true}\n')
    assert load_settings(p, env={}).esl.password == "ClueCon"


def test_password_is_not_in_repr():
    s = default_settings(env={"HOTLINE_ESL_PASSWORD": "topsecret"})
    assert s.esl.password == "topsecret"
    assert "topsecret" not in repr(s)


def test_tokens_from_environment_with_roles(tmp_path):
    p = write(tmp_path, 'trunk: {dids: ["1"]}\ncontrol:\n  tokens:\n'
                        '    - {name: ops, role: admin, token_env: T_OPS}\n'
                        '    - {name: a1, role: agent, agent: "1001", token_env: T_A1}\n')
    s = load_settings(p, env={**ENV, "T_OPS": "x1", "T_A1": "x2"})
    assert [(t.name, t.role, t.token) for t in s.control.tokens] == [("ops", "admin", "x1"), ("a1", "agent", "x2")]
    assert ":5:46: control.tokens[1].token_env: environment variable T_A1" in error_of(p, env={**ENV, "T_OPS": "x"})
    bad = write(tmp_path, 'trunk: {dids: ["1"]}\ncontrol:\n  tokens:\n    - {name: x, role: root, token_env: T}\n')
    assert "control.tokens[0].role: must be one of agent, supervisor, admin" in error_of(bad, env={**ENV, "T": "t"})


def test_database_url_defaults_and_relative_sqlite(tmp_path):
    s = load_settings(write(tmp_path, 'trunk: {dids: ["1"]}\ndatabase: {url: "sqlite:///db/h.db"}\n'), env=ENV)
    assert s.database.url == f"sqlite:///{tmp_path / 'db' / 'h.db'}"
    pg = load_settings(write(tmp_path, 'trunk: {dids: ["1"]}\ndatabase: {url: "postgresql://u@h/d"}\n'), env=ENV)
    assert pg.database.url == "postgresql://u@h/d"
    assert "unsupported database 'mysql'" in error_of(write(tmp_path, 'trunk: {dids: ["1"]}\ndatabase: {url: "mysql://x/y"}\n'))


def test_wildcard_listen_needs_advertise_host(tmp_path):
    msg = error_of(write(tmp_path, 'trunk: {dids: ["1"]}\noutbound: {listen_host: 0.0.0.0}\n'))
    assert "outbound.advertise_host: required when listen_host is a wildcard" in msg


def test_settings_are_immutable():
    s = default_settings(env={})
    with pytest.raises(AttributeError):
        s.esl.port = 1


def test_default_settings_overrides_and_base_dir(tmp_path):
    s = default_settings(base_dir=tmp_path, env={}, esl={"port": 9021}, paths={"var_dir": "v"})
    assert s.esl.port == 9021 and s.paths.var_dir == tmp_path / "v"
    assert s.paths.recordings == tmp_path / "v" / "recordings"
    with pytest.raises(SettingsError, match="esl.prot: unknown setting"):
        default_settings(env={}, esl={"prot": 1})


def test_reloadable_diff_splits_changes():
    old = default_settings(env={"T": "a"}, control={"tokens": [{"name": "o", "role": "admin", "token_env": "T"}]})
    new = default_settings(env={"T": "b"}, control={"tokens": [{"name": "o", "role": "admin", "token_env": "T"}]},
                           log={"level": "DEBUG"}, esl={"port": 1234}, files={"queues": "q2.yaml"})
    diff = reloadable_diff(old, new)
    assert set(diff.reloadable) == {"log.level", "control.tokens", "files.queues"}
    assert diff.restart_required == ("esl.port",)
    assert reloadable_diff(old, old) == ((), ())


def test_where_points_at_a_setting(tmp_path):
    p = write(tmp_path, 'trunk: {dids: ["1"]}\nfiles:\n  agents: a.yaml\n')
    s = load_settings(p, env=ENV)
    assert s.where("files.agents") == f"{p}:3:3"
    assert s.where("files.queues") == f"{p}:2:1"


def test_every_problem_of_the_file_at_once_in_file_order(tmp_path):
    """Schema problems (unknown, wrong type, out of bounds, bad choice) and the checks after the
    schema (time zone, secrets) all come in one error, one line each with file:line:col."""
    p = write(tmp_path, 'log: {level: LOUD}\n'
                        'trunk: {dids: ["1"]}\n'
                        'esl:\n'
                        '  prot: 8021\n'
                        '  connect_timeout: fast\n'
                        'recordings:\n'
                        '  retention_months: 3\n'
                        '  purge_tz: Mars/Olympus\n')
    with pytest.raises(SettingsError) as exc:
        load_settings(p, env={})
    assert exc.value.problems == [
        f"{p}:1:7: log.level: must be one of DEBUG, INFO, WARNING, ERROR; got 'LOUD'",
        f"{p}:3:1: esl.password_env: environment variable HOTLINE_ESL_PASSWORD is not set "
        "(set it, or esl.allow_default_password: true in a lab)",
        f"{p}:4:3: esl.prot: unknown setting (did you mean 'port'?)",
        f"{p}:5:3: esl.connect_timeout: expected a number, got the text 'fast'",
        f"{p}:7:3: recordings.retention_months: must be at least 12; got 3",
        f"{p}:8:3: recordings.purge_tz: unknown time zone 'Mars/Olympus'",
    ]
    assert str(exc.value) == "\n".join(exc.value.problems)


def test_a_wrong_setting_is_reported_once(tmp_path):
    """esl.password_env of the wrong type is not also 'environment variable ... is not set'; two
    tokens whose variables are unset are not also 'the same token'; every list item is checked."""
    p = write(tmp_path, 'trunk: {dids: ["1", 2, 3]}\nesl: {password_env: [X]}\ncontrol:\n  tokens:\n'
                        '    - {name: a, role: admin, token_env: T_A}\n    - {name: b, role: admin, token_env: T_B}\n')
    with pytest.raises(SettingsError) as exc:
        load_settings(p, env={})
    problems = [line.replace(str(p), "F") for line in exc.value.problems]
    assert problems == [
        "F:1:21: trunk.dids[1]: expected text, got the number 2; quote it: \"2\"",
        "F:1:24: trunk.dids[2]: expected text, got the number 3; quote it: \"3\"",
        "F:2:7: esl.password_env: expected text, got a list",
        "F:5:30: control.tokens[0].token_env: environment variable T_A is not set",
        "F:6:30: control.tokens[1].token_env: environment variable T_B is not set",
    ]
