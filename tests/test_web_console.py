"""The web console end to end, in a real headless Chromium, against the engine on the simulator:
an agent's desk and a supervisor's wallboard follow one call through the IVR, the queue, hold,
a transfer to another queue and the wrap-up; what must be refused is refused."""
import json

import pytest

from tests.acdfix import AcdRig, agent, queue, wait_for
from tests.browserfix import browser_factory, has_text, wait  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(not __import__("os").path.exists("/usr/bin/chromedriver"),
                                reason="chromium-driver is not installed")

ID_NUMBER = "110101199003077774"          # a valid resident ID (checksum): masked everywhere
MASKED_ID = "1101**********7774"
HOSTILE_NAME = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
CALLER = "13800138000"

FLOW = """name: main
entry: {'12345': ask_id}
prompts: {ask_id: "请输入身份证号码，以井号键结束", menu: "咨询请按1"}
nodes:
  ask_id:
    type: collect
    prompt: ask_id
    variable: id_number
    validator: cn_id
    min_digits: 18
    max_digits: 18
    children: {ok: menu, invalid: menu}
  menu:
    type: menu
    prompt: menu
    children: {"1": to_general, timeout: to_general, invalid: to_general}
  to_general:
    type: queue
    queue: general
"""


@pytest.fixture
def console(tmp_path, redis_server, redis_prefix):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "main.yaml").write_text(FLOW, encoding="utf-8")
    rig = AcdRig(tmp_path, redis_server.url, redis_prefix,
                 [agent("1001", {"general": 5}), agent("1002", {"pension": 5}),
                  agent("9001", {"general": 1}, role="supervisor")],
                 [queue("general", wrapup_seconds=30, music="local_stream://moh"),
                  queue("pension", skills={"pension": 1}, wrapup_seconds=30, music="local_stream://moh")],
                 flows_dir=flows, tickets=True, tts={"edge_enabled": False},
                 paths_prompt_cache=tmp_path / "prompts")
    state = rig.engine.control.application.extensions["hotline"]
    state.accounts.set_password("1001", "agent-1001-pass", "test", role="agent", agent="1001")
    state.accounts.set_password("9001", "super-9001-pass", "test", role="supervisor")
    rig.base = f"http://127.0.0.1:{rig.settings.control.listen_port}"
    yield rig
    rig.stop()


def login(driver, base, account, password, page):
    from selenium.webdriver.common.by import By
    driver.get(f"{base}/login")
    driver.find_element(By.NAME, "id").send_keys(account)
    pw = driver.find_element(By.NAME, "password")
    pw.send_keys(password)
    pw.submit()
    wait(driver, lambda d: d.current_url.rstrip("/").endswith(page), message=f"{account} not on {page}")


def css(driver, selector):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.CSS_SELECTOR, selector)


def attr_is(selector, name, value):
    """Condition read in the page in one go (the pages rebuild their rows on every update: an
    element found first and read after would be stale)."""
    def check(d):
        return d.execute_script("var e = document.querySelector(arguments[0]);"
                                "return e ? e.getAttribute(arguments[1]) : null;", selector, name) == value
    return check


def enabled(selector):
    from selenium.webdriver.common.by import By

    def check(d):
        if not d.execute_script("var e = document.querySelector(arguments[0]); return !!e && !e.disabled;",
                                selector):
            return False
        return d.find_element(By.CSS_SELECTOR, selector)
    return check


def fetch(driver, method, url, body=None, csrf=True):
    """A request from the page itself (its session cookie), with or without the CSRF header."""
    return driver.execute_async_script("""
        var done = arguments[arguments.length - 1];
        var h = {"Content-Type": "application/json"};
        if (arguments[3]) h["X-CSRFToken"] = document.querySelector('meta[name="csrf-token"]').content;
        fetch(arguments[1], {method: arguments[0], headers: h, credentials: "same-origin",
                             body: arguments[2] === null ? undefined : JSON.stringify(arguments[2])})
          .then(function (r) { return r.text().then(function (t) { done([r.status, t]); }); },
                function (e) { done([0, String(e)]); });
    """, method, url, body, csrf)


def test_a_call_through_the_desk_and_the_wallboard(console, browser_factory):  # noqa: F811
    from selenium.webdriver.support.ui import Select
    rig = console
    desk, board = browser_factory(), browser_factory()
    desk.set_script_timeout(10)
    login(desk, rig.base, "1001", "agent-1001-pass", "/desk")
    login(board, rig.base, "9001", "super-9001-pass", "/wallboard")

    # the agent logs in and is ready; the wallboard sees it
    rig.phone("1001", answer_after=0.05)
    wait(desk, enabled("#btn-login")).click()
    wait(desk, attr_is("#agent-state", "data-state", "available"))
    wait(board, attr_is('tr[data-agent="1001"]', "data-state", "available"))
    assert rig.state("1001") == "available"

    # a caller with a hostile name keys an ID number and 1 in the IVR, and reaches the agent
    caller = rig.call(number=CALLER, name=HOSTILE_NAME)
    assert wait_for(lambda: getattr(rig.engine.calls.get(caller.uuid), "ivr_node", None) == "collect", 15)
    caller.press(ID_NUMBER + "#")
    assert wait_for(lambda: getattr(rig.engine.calls.get(caller.uuid), "ivr_node", None) == "menu", 15)
    caller.press("1")
    assert rig.wait_state("1001", "in_call", timeout=15)
    wait(desk, has_text("#pop-number", CALLER), message="screen pop without the caller's number")
    ivr = css(desk, "#pop-ivr").text
    assert MASKED_ID in ivr and ID_NUMBER not in ivr
    assert "main:menu" in ivr and "main:ask_id" in ivr
    assert css(desk, "#pop-queue").text == "general"
    assert ID_NUMBER not in desk.page_source
    wait(board, attr_is(f'tr[data-call="{caller.uuid}"]', "data-stage", "talking"))
    # hostile text is text: shown verbatim, nothing ran, no element made from it
    wait(board, has_text(f'tr[data-call="{caller.uuid}"] td.caller', HOSTILE_NAME))
    assert board.execute_script("return window.__pwned === undefined"
                                " && document.querySelectorAll('main img').length === 0")
    assert desk.execute_script("return window.__pwned === undefined")

    # hold and unhold: the desk's buttons follow the stage, the wallboard too
    assert not css(desk, "#btn-unhold").is_enabled() and not css(desk, "#btn-complete").is_enabled()
    wait(desk, enabled("#btn-hold")).click()
    wait(desk, attr_is("#call-stage", "data-stage", "held"))
    wait(board, attr_is(f'tr[data-call="{caller.uuid}"]', "data-stage", "held"))
    assert not css(desk, "#btn-hold").is_enabled()
    wait(desk, enabled("#btn-unhold")).click()
    wait(desk, attr_is("#call-stage", "data-stage", "talking"))
    wait(board, attr_is(f'tr[data-call="{caller.uuid}"]', "data-stage", "talking"))

    # an agent cannot act on another agent's call: 1002 takes a call of the pension queue later;
    # transfer this caller there (blind, to a queue)
    rig.login("1002")
    Select(css(desk, "#target-kind")).select_by_value("queue")
    Select(css(desk, "#target-queue")).select_by_value("pension")
    wait(desk, enabled("#btn-transfer")).click()
    assert rig.wait_state("1002", "in_call", timeout=15)
    wait(desk, attr_is("#agent-state", "data-state", "wrap_up"))
    wait(board, attr_is('tr[data-agent="1001"]', "data-state", "wrap_up"))
    wait(board, attr_is('tr[data-agent="1002"]', "data-state", "in_call"))
    status, text = fetch(desk, "POST", "/v1/calls/1002/hold", {})
    assert status == 403, text
    status, text = fetch(desk, "POST", f"/v1/calls/{caller.uuid}/hold", {})
    assert status == 403, text
    assert not rig.acd.conversations[caller.uuid].held

    # the wrap-up countdown runs; extend adds time
    first = int(wait(desk, lambda d: css(d, "#wrapup-left").text.isdigit() and css(d, "#wrapup-left").text))
    wait(desk, lambda d: css(d, "#wrapup-left").text.isdigit() and int(css(d, "#wrapup-left").text) < first,
         message="the wrap-up countdown does not run")
    css(desk, "#btn-extend").click()
    wait(desk, lambda d: css(d, "#wrapup-left").text.isdigit() and int(css(d, "#wrapup-left").text) > first,
         message="extend did not add time")

    # disposition, notes (an ID number in them is masked), a work order
    Select(css(desk, "#disposition")).select_by_value("consultation")
    css(desk, "#notes").send_keys(f"咨询养老保险 {ID_NUMBER}")
    css(desk, "#ticket-create").click()
    css(desk, "#ticket-summary").send_keys("市民咨询养老保险缴费")
    wait(desk, enabled("#btn-save-wrapup")).click()
    wait(desk, attr_is("#wrapup-result", "data-saved", caller.uuid))
    assert "工单 T" in css(desk, "#wrapup-result").text
    ticket = rig.engine.tickets.checker.store.by_call(caller.uuid, "agent")
    assert ticket["category"] == "consultation" and ticket["summary"] == "市民咨询养老保险缴费"

    # "end now": the agent is available again
    css(desk, "#btn-end-wrapup").click()
    wait(desk, attr_is("#agent-state", "data-state", "available"))
    wait(board, attr_is('tr[data-agent="1001"]', "data-state", "available"))

    # the caller hangs up: the CDR carries the disposition
    caller.hangup()
    assert wait_for(lambda: (rig.engine.store.get(caller.uuid) or {}).get("extra", {}).get("disposition")
                    and "provisional" not in (rig.engine.store.get(caller.uuid).get("tags") or []), 15)
    disposition = rig.engine.store.get(caller.uuid)["extra"]["disposition"]
    assert disposition["category"] == "consultation" and disposition["agent"] == "1001"
    assert MASKED_ID in disposition["notes"] and ID_NUMBER not in disposition["notes"]
    wait(board, lambda d: not d.find_elements("css selector", f'tr[data-call="{caller.uuid}"]'))

    # the big screen counts the call (the daily report's figures, from the CDRs) and draws its charts
    board.get(f"{rig.base}/wallboard/big")
    wait(board, has_text("#t-answered", "1"))
    assert css(board, "#t-abandoned").text == "0" and css(board, "#t-answer-rate").text == "100.0%"
    assert board.execute_script("return document.querySelectorAll('#c-calls rect').length") == 48

    # a forged request without the CSRF token is refused, and changes nothing
    status, text = fetch(desk, "POST", "/v1/agents/1001/logout", {}, csrf=False)
    assert status == 400 and "CSRF" in json.loads(text)["error"]
    desk.execute_script("""
        var f = document.createElement('form'); f.method = 'post'; f.action = '/v1/agents/1001/logout';
        document.body.appendChild(f); f.submit();""")
    wait(desk, lambda d: "CSRF" in d.page_source)
    assert rig.state("1001") == "available"


def test_the_knowledge_base_answers_words_and_pinyin_initials(console, browser_factory):  # noqa: F811
    import shutil
    from pathlib import Path
    rig = console
    bots = Path(rig.settings.files.flows_dir) / "bots"
    bots.mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / "ivr_flows" / "bots" / "city_hotline.yaml", bots)
    desk = browser_factory()
    login(desk, rig.base, "1001", "agent-1001-pass", "/desk")
    for query in ("ylbx", "养老保险"):
        box = css(desk, "#kb-q")
        box.clear()
        box.send_keys(query + "\n")
        wait(desk, has_text("#kb-results", "养老保险在哪里缴费"), message=f"nothing for {query}")
    assert "税务部门" in css(desk, "#kb-results").text
