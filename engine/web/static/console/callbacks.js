/* The desk's callbacks panel (回拨任务 / 回访): the open callback jobs of this agent's queues
   (GET /v1/callbacks) with 拨打 (take), 跳过 (skip) and 完成 (done with a disposition), and the
   running preview campaigns this agent may serve (GET /v1/campaigns?preview_for=me) with 下一个
   (next {accept: false}: who and why, no dial yet), then 拨打 (dial) or 跳过 (skip).
   Jobs are not on the live stream (/events): the panel refreshes every 15 s, after each action
   and when the agent's state changes. Outside text (numbers, names, notes, fields) only via
   textContent (HL.el / HL.text). */
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var agentId = document.body.dataset.agent;
  var REFRESH_MS = 15000;
  var REASONS = {queue_callback: "排队回拨", voicemail: "留言回拨", bot: "机器人登记", ticket: "工单回拨",
                 manual: "人工登记", campaign: "回访"};
  var JOB_STATES = {pending: "待回拨", claimed: "拨打中"};
  var agentState = null;      // from desk.js (desk:state); null until the first state
  var shown = null;           // the preview contact on screen (claimed for this agent, not dialled)
  var busy = false;           // an action is on its way: no second click

  // what the agent's state allows: dial only when ready (an answered callback is offered to them),
  // skip and close while logged in and not on a call
  function canDial() { return agentState === "available" && !busy; }
  function canAct() {
    return agentState !== null && agentState !== "logged_out" && agentState !== "ringing"
      && agentState !== "in_call" && !busy;
  }

  function when(v) {
    if (!v) return null;
    var d = new Date(v);
    if (isNaN(d.getTime())) return String(v);
    var p = function (n) { return (n < 10 ? "0" : "") + n; };
    return p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes());
  }

  function button(label, data, cls) {
    var b = HL.el("button", {type: "button", className: cls || ""}, label);
    for (var k in data) b.dataset[k] = data[k];
    return b;
  }

  /* Rows are kept while their data is the same (a refresh must not rebuild a row under the
     agent's pointer); a changed row is made again. */
  function keyed(body, rows, key, make, empty) {
    var old = {};
    Array.prototype.forEach.call(body.children, function (tr) { if (tr.dataset.key) old[tr.dataset.key] = tr; });
    var keep = [];
    rows.forEach(function (r) {
      var sig = JSON.stringify(r.data), tr = old[r.key];
      if (!tr || tr.dataset.sig !== sig) { tr = make(r.row); tr.dataset.key = r.key; tr.dataset.sig = sig; }
      keep.push(tr);
    });
    HL.clear(body);
    keep.forEach(function (tr) { body.appendChild(tr); });
    if (!keep.length) body.appendChild(HL.el("tr", null, HL.el("td", {colSpan: 10, className: "muted"}, empty)));
  }

  function jobRow(j) {
    var overdue = j.overdue, mine = j.agent === agentId;
    var acts = HL.el("td");
    if (j.state === "pending") {
      acts.appendChild(button("拨打", {cbAction: "take", job: j.id}, "primary"));
      acts.appendChild(button("跳过", {cbAction: "skip", job: j.id}));
      acts.appendChild(button("完成", {cbAction: "done", job: j.id}));
    }
    var state = (JOB_STATES[j.state] || j.state) + (j.agent ? "（" + (mine ? "我" : j.agent) + "）" : "")
      + (j.last_result ? " · " + j.last_result : "");
    return HL.el("tr", {className: overdue ? "over" : "", dataset: {job: j.id, state: j.state}},
      HL.el("td", {className: "number"}, HL.el("b", null, j.number)),
      HL.el("td", null, REASONS[j.reason] || j.reason),
      HL.el("td", null, j.queue || "—"),
      HL.el("td", {title: j.call_uuid ? "原通话 " + j.call_uuid : "人工登记"}, when(j.created_at)),
      HL.el("td", null, when(j.due_at)),
      HL.el("td", {className: "deadline"}, when(j.deadline_at) || "—", overdue ? " 已超时" : ""),
      HL.el("td", null, j.ticket_id ? "#" + j.ticket_id : "—"),
      HL.el("td", null, state, " ", HL.el("span", {className: "muted"}, j.attempts ? "第 " + j.attempts + " 次" : "")),
      HL.el("td", {className: "wrap note"}, j.note || ""),
      acts);
  }

  function renderJobs(rows) {
    var now = Date.now();
    HL.text("cb-count", rows.length);
    keyed($("cb-jobs"), rows.map(function (j) {
      j.overdue = !!(j.deadline_at && new Date(j.deadline_at).getTime() < now);
      return {key: "job-" + j.id, data: j, row: j};
    }), null, jobRow, "没有待回拨的任务");
  }

  function campaignRow(c) {
    return HL.el("tr", {dataset: {campaign: c.name}},
      HL.el("td", null, c.name), HL.el("td", null, c.contacts ? c.contacts.pending : "—"),
      HL.el("td", {className: "wrap"}, c.note || ""),
      HL.el("td", null, button("下一个", {cbAction: "next", campaign: c.name})));
  }

  function renderCampaigns(rows) {
    keyed($("cb-campaigns"), rows.map(function (c) {
      return {key: "c-" + c.name, data: [c.name, c.note, c.contacts && c.contacts.pending], row: c};
    }), null, campaignRow, "没有进行中的预览外呼活动");
  }

  function renderContact() {
    $("cb-contact").classList.toggle("hidden", !shown);
    if (!shown) return;
    HL.text("cb-contact-campaign", shown.campaign);
    HL.text("cb-contact-name", shown.name || "（无姓名）");
    HL.text("cb-contact-number", shown.number);
    HL.text("cb-contact-reference", shown.reference || "—");
    var f = $("cb-contact-fields"); HL.clear(f);
    Object.keys(shown.fields || {}).forEach(function (k) {
      f.appendChild(HL.el("dt", null, k));
      f.appendChild(HL.el("dd", null, shown.fields[k]));
    });
  }

  // buttons follow the agent's state, between refreshes too
  function enable() {
    document.querySelectorAll("#callbacks [data-cb-action]").forEach(function (b) {
      var act = b.dataset.cbAction;
      b.disabled = act === "take" ? !canDial() : act === "next" ? (!canDial() || !!shown) : !canAct();
    });
    $("cb-contact-dial").disabled = !shown || !canDial();
    $("cb-contact-skip").disabled = !shown || busy;
    var hint = agentState === "logged_out" ? "签入并就绪后可拨打"
      : agentState === "available" ? "" : agentState === null ? "" : "就绪后可拨打";
    HL.text("cb-hint", hint);
  }

  function refresh() {
    var jobs = HL.api("GET", "/v1/callbacks").then(function (r) { renderJobs(r.callbacks); });
    var camps = HL.api("GET", "/v1/campaigns?preview_for=me").then(function (r) { renderCampaigns(r.campaigns); });
    return Promise.all([jobs, camps]).then(function () {
      HL.text("cb-updated", "更新于 " + when(new Date().toISOString()).slice(6));
      $("callbacks").dataset.loaded = "1";
    }, function (e) {
      if (e.status === 401) location.reload();
      HL.text("cb-updated", e.status === 503 ? "回拨服务未运行" : "刷新失败：" + e.message);
    }).then(enable);
  }

  function act(promise, okMessage) {
    busy = true; enable();
    return promise.then(function (r) { if (okMessage) HL.toast(okMessage); return r; },
                        function (e) { HL.toast("操作失败：" + e.message, true); })
      .then(function (r) { busy = false; return refresh().then(function () { return r; }); });
  }

  $("callbacks").addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-cb-action]");
    if (!b || b.disabled) return;
    var a = b.dataset.cbAction;
    if (a === "next") {
      var name = b.dataset.campaign;
      act(HL.api("POST", "/v1/campaigns/" + encodeURIComponent(name) + "/next", {accept: false})).then(function (r) {
        if (r && r.contact) { shown = r.contact; renderContact(); enable(); }
        else if (r) HL.toast("活动 " + name + " 暂无可呼叫的联系人");
      });
      return;
    }
    var url = "/v1/callbacks/" + encodeURIComponent(b.dataset.job) + "/" + a;
    var body = a === "done" ? {disposition: $("cb-disposition").value} : {};
    act(HL.api("POST", url, body), {take: "正在拨打", skip: "已跳过", done: "已完成"}[a]);
  });

  function contactAction(action) {
    if (!shown) return;
    var c = shown;
    act(HL.api("POST", "/v1/campaigns/" + encodeURIComponent(c.campaign) + "/" + action, {contact: c.id}),
        action === "dial" ? "正在拨打 " + c.number : "已跳过").then(function () {
      shown = null; renderContact(); enable();
    });
  }
  $("cb-contact-dial").addEventListener("click", function () { contactAction("dial"); });
  $("cb-contact-skip").addEventListener("click", function () { contactAction("skip"); });

  document.addEventListener("desk:state", function (ev) {
    var s = ev.detail.agent.state;
    if (s !== agentState) {
      var first = agentState === null;
      agentState = s;
      if (!first) refresh();          // a call ended or began: a job's state may have moved
    }
    enable();
  });

  refresh();
  setInterval(refresh, REFRESH_MS);
})();
