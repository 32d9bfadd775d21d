"""/metrics in the Prometheus text format (parsed with prometheus_client's own parser), and its
figures moving when calls go through the simulator; /api/openapi.json describes every route."""
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.acdfix import AcdRig, agent, queue, wait_for
from tests.enginefix import free_port
from tests.webfix import Browser, base_url

TOKENS = {"TOK_SUP": "sup-secret-1", "TOK_1001": "agent-secret-1001"}


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    control = {"listen_port": free_port(), "tokens": [
        {"name": "ops", "role": "supervisor", "token_env": "TOK_SUP"},
        {"name": "desk1001", "role": "agent", "agent": "1001", "token_env": "TOK_1001"}]}
    r = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001"), agent("1002")],
               [queue("general", music="local_stream://moh", service_level_seconds=20)], env=TOKENS,
               control=control)
    r.url = base_url(r)
    yield r
    r.stop()


def scrape(rig, token="sup-secret-1"):
    status, headers, text = Browser(rig.url).request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_parse_and_move_when_a_call_goes_through(rig):
    before = scrape(rig)
    assert value(before, "hotline_agents", state="logged_out") == 2
    assert value(before, "hotline_queue_waiting", queue="general") == 0
    assert value(before, "hotline_calls_in_progress", stage="agent") == 0
    assert value(before, "hotline_backend_up", backend="redis") == 1
    assert value(before, "hotline_backend_up", backend="database") == 1
    assert value(before, "hotline_cdr_spool_depth") == 0
    assert value(before, "hotline_queue_service_level_ratio", queue="general") is None    # nothing answered yet
    events_before = value(before, "hotline_esl_events_total") or 0
    rtt_before = value(before, "hotline_esl_command_seconds_count") or 0
    answered_before = value(before, "hotline_calls_total", result="agent") or 0

    caller = rig.call("13800000001")                     # nobody logged in: it waits
    assert wait_for(lambda: value(scrape(rig), "hotline_queue_waiting", queue="general") == 1)
    during = scrape(rig)
    assert value(during, "hotline_calls_in_progress", stage="queue") == 1
    assert value(during, "hotline_queue_longest_wait_seconds", queue="general") >= 0
    rig.login("1001")
    assert wait_for(lambda: rig.state("1001") == "in_call")
    talking = scrape(rig)
    assert value(talking, "hotline_agents", state="in_call") == 1
    assert value(talking, "hotline_calls_in_progress", stage="agent") == 1
    assert value(talking, "hotline_queue_service_level_ratio", queue="general") == 1.0
    caller.hangup()
    assert wait_for(lambda: (value(scrape(rig), "hotline_calls_total", result="agent") or 0) == answered_before + 1)
    after = scrape(rig)
    assert value(after, "hotline_calls_in_progress", stage="agent") == 0
    assert value(after, "hotline_queue_answered_today", queue="general") == 1
    assert value(after, "hotline_esl_events_total") > events_before
    assert value(after, "hotline_esl_command_seconds_count") > rtt_before


def test_metrics_need_a_supervisor(rig):
    b = Browser(rig.url)
    assert b.request("GET", "/metrics")[0] == 401
    assert b.request("GET", "/metrics", headers={"Authorization": "Bearer agent-secret-1001"})[0] == 403


def test_every_route_is_described_in_the_openapi_document(rig):
    app = rig.engine.control.application
    doc = Browser(rig.url).get("/api/openapi.json")
    assert doc["openapi"].startswith("3.0.") and doc["info"]["title"] and doc["info"]["version"]
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if (path, method.lower()) not in described:
                missing.append(f"{method} {path}")
    assert missing == []
    # the shape: each operation has a summary, unique operationId, responses with descriptions, and
    # declares every {parameter} of its path
    ids = set()
    for path, ops in doc["paths"].items():
        assert path.startswith("/")
        params = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
        for method, op in ops.items():
            assert method in ("get", "post", "put", "patch", "delete")
            assert op["summary"] and op["operationId"] not in ids
            ids.add(op["operationId"])
            assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == params
            assert all(p["required"] is True for p in op.get("parameters", []))
            assert op["responses"] and all(r["description"] for r in op["responses"].values())
            for scheme in op.get("security", []):
                assert set(scheme) <= set(doc["components"]["securitySchemes"])
            for content in (op.get("requestBody") or {}).get("content", {}).values():
                assert content["schema"]["type"] == "object"
    for rule_path in described:
        assert any(rule_path[0] == r.rule.replace("<", "{").replace(">", "}") for r in app.url_map.iter_rules())


def test_the_grafana_dashboard_uses_only_metrics_the_engine_exports(rig):
    import json
    import re
    from pathlib import Path
    dash = json.loads((Path(__file__).parent.parent / "docs" / "grafana-hotline.json").read_text(encoding="utf-8"))
    exported = {name for name, _ in scrape(rig)} | {"hotline_bot_recognition_seconds_bucket",
                                                     "hotline_bot_reply_seconds_bucket", "hotline_calls_total",
                                                     "hotline_web_logins_total",
                                                     "hotline_queue_service_level_ratio"}   # appear once observed
    used = set()
    for panel in dash["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"\bhotline_[a-z_]+", target["expr"]))
    assert used and used <= exported, used - exported
