"""The desk's callbacks panel (回拨任务 / 回访) in a real headless Chromium, against the engine on
the simulator: jobs made through the control API (a supervisor's token) appear on the agent's
desk, hostile text is shown as text, the buttons follow the agent's state, 跳过 removes a job,
拨打 rings the agent, dials the customer and the call shows on this desk, where it is held, taken
back and transferred to a queue; a preview campaign's next
contact is shown (who and why) before any dial and 跳过 gives it back."""
import json
import urllib.request
from urllib.parse import quote

import pytest

from engine.outbound import jobs
from engine.outbound.db import OutboundDb
from engine.sim.pstn import Behaviour, Population
from tests.acdfix import AcdRig, agent, queue, wait_for
from tests.browserfix import browser_factory, has_text, wait  # noqa: F401  (fixture)
from tests.enginefix import free_port
from tests.test_outbound_sim import ALWAYS_OPEN, PROMPT_CACHE
from tests.test_web_console import attr_is, css, enabled, login

pytestmark = pytest.mark.skipif(not __import__("os").path.exists("/usr/bin/chromedriver"),
                                reason="chromium-driver is not installed")

HOSTILE = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
CUSTOMER = "13900000002"
OTHER = "13900000003"


@pytest.fixture
def desk_rig(tmp_path, redis_server, redis_prefix):
    port = free_port()
    rig = AcdRig(tmp_path, redis_server.url, redis_prefix,
                 [agent("1001", {"general": 5}), agent("1002", {"pension": 5})],
                 [queue("general", skills={"general": 1}, wrapup_seconds=30),
                  queue("pension", skills={"pension": 1})],
                 paths_prompt_cache=PROMPT_CACHE, tickets=True,
                 control={"listen_port": port, "tokens": [{"name": "boss", "role": "supervisor",
                                                           "token_env": "T_SUP"}]},
                 env={"T_SUP": "supervisor-secret"},
                 outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5, "max_agent_share": 1.0,
                                 "jobs": {"tick_seconds": 0.1, "callback_mode": "preview"}})
    rig.switch.population = Population().add(CUSTOMER, Behaviour("person", ring=0.2, hangup_after=30)).add(
        OTHER, Behaviour("busy"))
    state = rig.engine.control.application.extensions["hotline"]
    state.accounts.set_password("1001", "agent-1001-pass", "test", role="agent", agent="1001")
    rig.base = f"http://127.0.0.1:{port}"
    rig.db = OutboundDb(rig.settings.database.url).open()

    def api(method, path, body=None):
        req = urllib.request.Request(rig.base + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer supervisor-secret",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    rig.api = api
    yield rig
    rig.stop()


def test_the_desk_lists_skips_and_dials_callbacks(desk_rig, browser_factory):  # noqa: F811
    rig = desk_rig
    skipped = rig.api("POST", "/v1/callbacks", {"number": OTHER, "queue": "general", "note": HOSTILE})["job"]
    dialled = rig.api("POST", "/v1/callbacks", {"number": CUSTOMER, "queue": "general", "note": "问社保转移"})["job"]
    pension = rig.api("POST", "/v1/callbacks", {"number": OTHER, "queue": "pension"})["job"]
    desk = browser_factory()
    login(desk, rig.base, "1001", "agent-1001-pass", "/desk")

    # the jobs of the agent's queue, not another queue's; hostile text is text
    row = f'#cb-jobs tr[data-job="{skipped["id"]}"]'
    wait(desk, has_text(f"{row} td.note", HOSTILE), message="the job is not on the desk")
    assert css(desk, f'#cb-jobs tr[data-job="{dialled["id"]}"] td.number').text == CUSTOMER
    assert not desk.find_elements("css selector", f'#cb-jobs tr[data-job="{pension["id"]}"]')
    assert desk.execute_script("return window.__pwned === undefined"
                               " && document.querySelectorAll('#callbacks img').length === 0")
    # logged out: nothing to press
    wait(desk, attr_is("#agent-state", "data-state", "logged_out"))
    assert not css(desk, f'{row} button[data-cb-action="take"]').is_enabled()
    assert not css(desk, f'{row} button[data-cb-action="skip"]').is_enabled()

    # logged in and ready: 跳过 removes the job from this desk (the job stays open for others)
    rig.phone("1001", answer_after=0.05)
    wait(desk, enabled("#btn-login")).click()
    wait(desk, attr_is("#agent-state", "data-state", "available"))
    wait(desk, enabled(f'{row} button[data-cb-action="skip"]')).click()
    wait(desk, lambda d: not d.find_elements("css selector", row), message="跳过 left the job listed")
    job = jobs.get_job(rig.db, skipped["id"])
    assert job["state"] == "pending" and job["skipped_by"] == ["1001"]

    # 拨打: the agent's phone rings first, then the customer is dialled and bridged: on the desk
    wait(desk, enabled(f'#cb-jobs tr[data-job="{dialled["id"]}"] button[data-cb-action="take"]')).click()
    assert rig.wait_state("1001", "in_call", timeout=30)
    wait(desk, has_text("#pop-number", CUSTOMER), message="the callback is not on the desk")
    wait(desk, attr_is("#call-stage", "data-stage", "talking"))
    assert len(rig.switch.population.phones[CUSTOMER].calls) == 1
    # on a call: the panel's buttons are off
    wait(desk, lambda d: d.execute_script(
        "return Array.prototype.every.call(document.querySelectorAll('#callbacks button[data-cb-action]'),"
        " function (b) { return b.disabled; })"))
    assert jobs.get_job(rig.db, dialled["id"])["agent"] == "1001"

    # the preview call's in-call controls: hold, transfer and hang-up apply, a consultation does not
    wait(desk, enabled("#btn-hold"))
    assert css(desk, "#btn-transfer").is_enabled() and css(desk, "#btn-hangup").is_enabled()
    assert not css(desk, "#btn-consult").is_enabled() and not css(desk, "#btn-unhold").is_enabled()
    css(desk, "#btn-hold").click()
    wait(desk, attr_is("#call-stage", "data-stage", "held"))
    assert not css(desk, "#btn-hold").is_enabled()
    wait(desk, enabled("#btn-unhold")).click()
    wait(desk, attr_is("#call-stage", "data-stage", "talking"))
    # 转接 to the queue (the first target): the customer waits there, the agent wraps up
    assert css(desk, "#target-queue").get_attribute("value") == "general"
    wait(desk, enabled("#btn-transfer")).click()
    wait(desk, attr_is("#agent-state", "data-state", "wrap_up"))
    assert wait_for(lambda: rig.acd.store.queue_length("general") == 1, 20)
    assert len(rig.switch.population.phones[CUSTOMER].calls) == 1        # the same call, not a new dial


def test_the_desk_shows_a_preview_contact_before_any_dial(desk_rig, browser_factory):  # noqa: F811
    rig = desk_rig
    name = quote("回访-1204")
    rig.api("POST", "/v1/campaigns", {"name": "回访-1204", "mode": "preview", "queue": "general"})
    rig.api("POST", f"/v1/campaigns/{name}/contacts", {"rows": [
        {"number": CUSTOMER, "name": HOSTILE, "reference": "T-20261204-0007", "fields": {"事项": "养老金补发"}}]})
    rig.api("POST", f"/v1/campaigns/{name}/start")
    desk = browser_factory()
    login(desk, rig.base, "1001", "agent-1001-pass", "/desk")
    rig.phone("1001", answer_after=0.05)
    wait(desk, enabled("#btn-login")).click()
    wait(desk, attr_is("#agent-state", "data-state", "available"))
    wait(desk, enabled('#cb-campaigns button[data-cb-action="next"]')).click()
    wait(desk, has_text("#cb-contact-name", HOSTILE), message="no contact shown")
    assert css(desk, "#cb-contact-number").text == CUSTOMER
    assert css(desk, "#cb-contact-reference").text == "T-20261204-0007"
    assert "养老金补发" in css(desk, "#cb-contact-fields").text
    assert desk.execute_script("return window.__pwned === undefined")
    assert CUSTOMER not in rig.switch.population.phones          # shown, not dialled
    # one contact at a time: 下一个 waits until this one is dialled or skipped
    assert not css(desk, '#cb-campaigns button[data-cb-action="next"]').is_enabled()
    wait(desk, enabled("#cb-contact-skip")).click()
    wait(desk, lambda d: "hidden" in css(d, "#cb-contact").get_attribute("class"))
    wait_for(lambda: rig.db.run(lambda: rig.db.m.Contact.get()).state == "pending", 10)
    assert rig.db.run(lambda: rig.db.m.Contact.get()).skipped_by == ["1001"]
    assert CUSTOMER not in rig.switch.population.phones
