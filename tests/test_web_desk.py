"""The desk's and the wallboard's JSON over real HTTP (no browser): a repeat caller's screen pop
shows the first call with its disposition and ticket, a wrap-up after the caller hung up lands on
the stored CDR, the knowledge base answers pinyin initials, an agent reads only its own desk, and
the wallboard's filters and alerts."""
from urllib.parse import quote

import pytest

from tests.acdfix import AcdRig, agent, queue, wait_for
from tests.enginefix import free_port
from tests.webfix import Browser, add_account, base_url

CALLER = "13912345678"


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    flows = tmp_path / "flows"
    (flows / "kb").mkdir(parents=True)
    (flows / "kb" / "policies.csv").write_text(
        "id,category,question,answer,keywords\n"
        "gjj1,住房公积金,公积金怎么提取,携带身份证到公积金中心办理提取。,提取|公积金\n"
        "sb1,社会保险,社保卡丢了怎么办,拨打挂失电话或到银行网点挂失补办。,挂失\n", encoding="utf-8")
    r = AcdRig(tmp_path, redis_server.url, redis_prefix,
               [agent("1001", groups=["早班"]), agent("1002", {"pension": 5}, groups=["晚班"]),
                agent("9001", role="supervisor")],
               [queue("general", skills={"general": 1}, wrapup_seconds=30, music="local_stream://moh",
                      vip_numbers=[CALLER]),
                queue("pension", skills={"pension": 1}, music="local_stream://moh")],
               flows_dir=flows, tickets=True, control={"listen_port": free_port()},
               wallboard={"wait_alert_seconds": 1})
    add_account(r.engine, "1001", "desk-1001-pw", "agent")
    add_account(r.engine, "1002", "desk-1002-pw", "agent")
    add_account(r.engine, "9001", "board-9001-pw", "supervisor")
    r.url = base_url(r)
    yield r
    r.stop()


def desk_of(rig, account, password):
    b = Browser(rig.url)
    b.login(account, password)
    return b


def test_a_repeat_caller_pops_with_the_first_calls_disposition_and_ticket(rig):
    desk = desk_of(rig, "1001", "desk-1001-pw")
    desk.post("/v1/agents/1001/login")
    rig.phone("1001")
    first = rig.call(number=CALLER, name="王先生")
    assert rig.wait_state("1001", "in_call")
    state = desk.get("/api/desk/state")
    pop = state["pop"]
    assert pop["caller_number"] == CALLER and pop["queue"] == "general" and pop["vip"] is True
    assert pop["history"] == [] and pop["repeat"] is False
    assert state["controls"]["hold"] and not state["controls"]["unhold"]
    first.hangup()
    assert rig.wait_state("1001", "wrap_up")
    assert wait_for(lambda: rig.engine.store.get(first.uuid) is not None
                    and "provisional" not in (rig.engine.store.get(first.uuid)["tags"] or []), 10)
    # the caller is gone and the CDR final: the wrap-up updates the stored CDR
    out = desk.post("/api/desk/wrapup", {"call": first.uuid, "disposition": "complaint_review",
                                         "notes": "路灯不亮 110101199003077774",
                                         "ticket": {"category": "consultation", "summary": "路灯报修"},
                                         "callback": True})
    assert out["stored"] == "committed" and out["ticket"]["updated"] is False and out["callback"]["number"]
    extra = rig.engine.store.get(first.uuid)["extra"]
    assert extra["disposition"]["category"] == "complaint_review"
    assert extra["disposition"]["notes"] == "路灯不亮 1101**********7774"
    again = desk.post("/api/desk/wrapup", {"call": first.uuid, "disposition": "complaint_review",
                                           "ticket": {"category": "consultation", "summary": "路灯报修，已派单"}})
    assert again["ticket"]["updated"] is True and again["ticket"]["number"] == out["ticket"]["number"]
    desk.post("/v1/agents/1001/ready")

    second = rig.call(number=CALLER, name="王先生")
    assert rig.wait_state("1001", "in_call")
    pop = desk.get("/api/desk/state")["pop"]
    assert pop["call"] == second.uuid and pop["repeat"] is True and pop["last_agent"] == "1001"
    assert [h["call"] for h in pop["history"]] == [first.uuid]
    assert pop["history"][0]["disposition"] == "complaint_review" and pop["history"][0]["agent"] == "1001"
    tickets = {t["number"]: t for t in pop["tickets"]}
    assert tickets[out["ticket"]["number"]]["summary"] == "路灯报修，已派单"
    assert {t["kind"] for t in pop["tickets"]} == {"agent", "callback"}
    second.hangup()


def test_an_agent_reads_and_wraps_up_only_its_own_desk(rig):
    other = desk_of(rig, "1002", "desk-1002-pw")
    other.json("GET", "/api/desk/state?agent=1001", expect=403)
    other.json("POST", "/api/desk/wrapup", {"agent": "1001", "call": "x", "disposition": "consultation"},
               expect=403)
    other.json("POST", "/api/desk/wrapup", {"call": "not-my-call", "disposition": "consultation"}, expect=403)
    other.json("POST", "/api/desk/wrapup", {"call": "x", "disposition": "no-such"}, expect=400)
    board = desk_of(rig, "9001", "board-9001-pw")
    assert board.get("/api/desk/state?agent=1001")["agent"]["id"] == "1001"      # a supervisor may
    other.json("GET", "/api/wallboard/snapshot", expect=403)


def test_the_knowledge_base_finds_words_and_pinyin_initials(rig):
    desk = desk_of(rig, "1001", "desk-1001-pw")
    assert [e["id"] for e in desk.get("/api/desk/kb?q=gjj")["entries"]] == ["gjj1"]
    assert [e["id"] for e in desk.get("/api/desk/kb?q=" + quote("挂失"))["entries"]] == ["sb1"]
    assert [e["id"] for e in desk.get("/api/desk/kb?q=shebaoka")["entries"]] == ["sb1"]
    assert desk.get("/api/desk/kb?q=zzzz")["entries"] == []


def test_the_wallboard_filters_by_queue_and_group_and_alerts_on_a_long_wait(rig):
    board = desk_of(rig, "9001", "board-9001-pw")
    caller = rig.call(number="13800000001", name="<b>x</b>")          # nobody logged in: waits
    assert wait_for(lambda: rig.acd.store.queue_length("general") == 1)
    snap = board.get("/api/wallboard/snapshot?queue=general")
    assert [q["name"] for q in snap["queues"]] == ["general"]
    calls = [(c["caller"], c["caller_name"], c["stage"]) for c in snap["calls"]]
    assert calls == [("13800000001", "<b>x</b>", "queue")]
    assert {a["id"] for a in snap["agents"]} == {"1001", "9001"}          # qualified for general
    assert {a["id"] for a in board.get("/api/wallboard/snapshot?group=" + quote("晚班"))["agents"]} == {"1002"}
    assert wait_for(lambda: any(al["kind"] == "wait" and al["queue"] == "general"
                                for al in board.get("/api/wallboard/snapshot")["alerts"]), 5)
    caller.hangup()
    assert wait_for(lambda: board.get("/api/wallboard/snapshot")["calls"] == [], 5)
    today = board.get("/api/wallboard/today")
    assert len(today["hourly"]["answered"]) == 24


def test_wallboard_settings_are_checked_with_file_line_column(tmp_path):
    from engine.settings import SettingsError, load_settings

    def error(text):
        path = tmp_path / "hotline.yaml"
        path.write_text('trunk: {dids: ["12345"]}\nwallboard:\n' + text, encoding="utf-8")
        with pytest.raises(SettingsError) as exc:
            load_settings(path, env={"HOTLINE_ESL_PASSWORD": "x"})
        return str(exc.value).replace(str(path), "F")
    assert "timezone: unknown time zone 'Mars/Olympus'" in error("  service_level_target: 80\ntimezone: Mars/Olympus\n")
    assert error("  state_alert_seconds: {napping: 10}\n").startswith(
        "F:3:25: wallboard.state_alert_seconds.napping: not an agent state")


def test_a_supervisor_blacklists_a_caller_where_the_engine_has_number_lists(rig):
    board = desk_of(rig, "9001", "board-9001-pw")
    if not hasattr(rig.settings, "outbound_calls"):
        # without outbound calling there is no list: the wallboard offers no button, the API says so
        assert board.get("/api/wallboard/snapshot")["blacklist"] is False
        board.json("POST", "/api/wallboard/blacklist", {"number": "13800000009"}, expect=503)
        return
    from engine.outbound.service import for_engine
    service = for_engine(rig.engine)
    assert wait_for(lambda: service.lists is not None, 10)
    assert board.get("/api/wallboard/snapshot")["blacklist"] is True
    out = board.post("/api/wallboard/blacklist", {"number": "13800000009", "reason": "骚扰"})
    assert out["blacklisted"]["number"] == "13800000009"
    assert service.lists.blacklist_entry("13800000009")["reason"] == "骚扰"
    board.json("POST", "/api/wallboard/blacklist", {"number": "not a number"}, expect=400)
    desk_of(rig, "1001", "desk-1001-pw").json("POST", "/api/wallboard/blacklist", {"number": "13800000009"},
                                              expect=403)
