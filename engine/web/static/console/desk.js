/* The agent's desk: state bar, screen pop, call controls, wrap-up, knowledge base.
   Everything outside-sourced is set with textContent (HL.el / HL.text). */
"use strict";
(function () {
  var agentId = document.body.dataset.agent;
  var q = "?agent=" + encodeURIComponent(agentId);
  var last = null;            // the last state document
  var wrapCall = null;        // the call the wrap-up form is for
  var $ = function (id) { return document.getElementById(id); };

  function render(doc) {
    last = doc;
    doc.got = Date.now() / 1000;     // the browser's clock: the countdown needs no synced clocks
    var a = doc.agent;
    var st = $("agent-state");
    st.textContent = HL.STATES[a.state] || a.state;
    st.className = "badge state-" + a.state;
    st.dataset.state = a.state;
    HL.text("state-reason", a.reason ? (HL.REASONS[a.reason] || a.reason) : "");
    HL.text("state-time", HL.duration(a.seconds_in_state));
    HL.text("today-calls", doc.today.calls);
    HL.text("today-talk", HL.duration(doc.today.talk_seconds));
    var out = a.state === "logged_out";
    $("btn-login").disabled = !out;
    $("btn-logout").disabled = out || a.state === "in_call" || a.state === "ringing";
    $("btn-ready").disabled = !(a.state === "on_break");
    $("btn-break").disabled = !(a.state === "available" || a.state === "wrap_up");
    $("break-reason").disabled = $("btn-break").disabled;
    var wrap = a.state === "wrap_up";
    $("wrapup-box").classList.toggle("hidden", !wrap);
    HL.text("wrapup-left", wrap && a.wrapup_left !== null ? Math.ceil(a.wrapup_left) : "—");
    renderCall(doc);
    renderPop(doc.pop, doc.call);
    if (doc.call && doc.call.call !== wrapCall) {
      wrapCall = doc.call.call;
      $("wrapup-form").reset();
      $("ticket-fields").classList.add("hidden");
      HL.text("wrapup-result", "");
    }
    $("btn-save-wrapup").disabled = !wrapCall;
    // the callbacks panel (callbacks.js) enables its buttons from the agent's state
    document.dispatchEvent(new CustomEvent("desk:state", {detail: doc}));
  }

  function renderCall(doc) {
    var c = doc.call, ctl = doc.controls;
    var stage = c && c.stage ? c.stage : null;
    var badge = $("call-stage");
    badge.textContent = stage ? (HL.STAGES[stage] || stage) : "无通话";
    badge.dataset.stage = stage || "";
    HL.text("call-time", c && c.seconds !== null ? HL.duration(c.seconds) : "");
    document.querySelectorAll("[data-call-action]").forEach(function (b) {
      var act = b.dataset.callAction;
      var on;
      if (act === "record-pause") on = ctl.record && c && !c.recording_paused;
      else if (act === "record-resume") on = ctl.record && c && c.recording_paused;
      else on = !!ctl[act];
      b.disabled = !on;
    });
  }

  function renderPop(p, call) {
    $("pop-empty").classList.toggle("hidden", !!p);
    $("pop-body").classList.toggle("hidden", !p);
    if (!p) { $("pop-vip").classList.add("hidden"); $("pop-repeat").classList.add("hidden"); HL.text("pop-stage", ""); return; }
    HL.text("pop-stage", call && call.stage ? (HL.STAGES[call.stage] || call.stage) : "");
    HL.text("pop-number", p.caller_number || "（未显示号码）");
    HL.text("pop-name", p.caller_name || "");
    HL.text("pop-did", p.did);
    HL.text("pop-queue", p.queue);
    HL.text("pop-wait", p.waited_seconds === null ? null : Math.round(p.waited_seconds) + " 秒");
    HL.text("pop-last-agent", p.last_agent);
    HL.text("pop-call", p.call);
    $("pop-vip").classList.toggle("hidden", !p.vip);
    $("pop-repeat").classList.toggle("hidden", !p.repeat);
    var ivr = $("pop-ivr"); HL.clear(ivr);
    p.ivr_path.forEach(function (s) {
      ivr.appendChild(HL.el("tr", null, HL.el("td", null, s.node), HL.el("td", null, s.type),
                            HL.el("td", null, s.branch), HL.el("td", {className: "digits"}, s.digits)));
    });
    if (!p.ivr_path.length) ivr.appendChild(HL.el("tr", null, HL.el("td", {colSpan: 4, className: "muted"}, "未经过语音导航")));
    var lk = $("pop-lookup"); HL.clear(lk);
    var keys = Object.keys(p.lookup || {});
    $("pop-lookup-box").classList.toggle("hidden", !keys.length);
    keys.forEach(function (k) {
      var v = p.lookup[k];
      lk.appendChild(HL.el("dt", null, k));
      lk.appendChild(HL.el("dd", null, typeof v === "object" ? JSON.stringify(v) : v));
    });
    var bot = $("pop-bot"); HL.clear(bot);
    $("pop-bot-box").classList.toggle("hidden", !p.bot);
    if (p.bot) {
      var why = {human: "转人工", done: "已解答", error: "故障", agent: "转人工"}[p.bot.exit] || p.bot.exit || "";
      HL.text("pop-bot-exit", why + (p.bot.intent ? " · " + p.bot.intent : ""));
      HL.text("pop-bot-summary", p.bot.summary || "");
      p.bot.transcript.forEach(function (e) {
        bot.appendChild(HL.el("li", null, HL.el("span", {className: "who"}, e.who === "bot" ? "机器人" : "来电人"), e.text));
      });
    }
    var h = $("pop-history"); HL.clear(h);
    p.history.forEach(function (r) {
      h.appendChild(HL.el("tr", null, HL.el("td", null, (r.start || "").replace("T", " ").slice(0, 16)),
        HL.el("td", null, r.agent || (r.abandoned ? "放弃" : "—")), HL.el("td", null, r.queue || "—"),
        HL.el("td", null, r.disposition || "—"), HL.el("td", {className: "wrap"}, r.notes || "")));
    });
    if (!p.history.length) h.appendChild(HL.el("tr", null, HL.el("td", {colSpan: 5, className: "muted"}, "无历史来电")));
    var t = $("pop-tickets"); HL.clear(t);
    p.tickets.forEach(function (r) {
      t.appendChild(HL.el("tr", null, HL.el("td", null, r.number), HL.el("td", null, r.category),
        HL.el("td", null, r.state), HL.el("td", {className: "wrap"}, r.summary)));
    });
    if (!p.tickets.length) t.appendChild(HL.el("tr", null, HL.el("td", {colSpan: 4, className: "muted"}, "无工单")));
  }

  function refresh() {
    return HL.api("GET", "/api/desk/state" + q).then(render).catch(function (e) {
      if (e.status === 401) location.reload();
    });
  }

  function failed(e) { HL.toast("操作失败：" + e.message, true); }

  document.querySelectorAll("[data-agent-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      var act = b.dataset.agentAction, body = {};
      if (act === "break") body.reason = $("break-reason").value;
      if (act === "extend") body.seconds = 30;
      HL.api("POST", "/v1/agents/" + encodeURIComponent(agentId) + "/" + act, body).then(refresh, failed);
    });
  });

  function target() {
    var kind = $("target-kind").value;
    var value = kind === "queue" ? $("target-queue").value : kind === "agent" ? $("target-agent").value
      : $("target-external").value.trim();
    return kind + ":" + value;
  }
  $("target-kind").addEventListener("change", function () {
    var k = this.value;
    $("target-queue").classList.toggle("hidden", k !== "queue");
    $("target-agent").classList.toggle("hidden", k !== "agent");
    $("target-external").classList.toggle("hidden", k !== "external");
  });

  document.querySelectorAll("[data-call-action]").forEach(function (b) {
    b.addEventListener("click", function () {
      if (!last || !last.call) return;
      var act = b.dataset.callAction, body = {}, path = act;
      if (act === "record-pause" || act === "record-resume") { path = "record"; body.action = act.slice(7); }
      if (act === "transfer" || act === "consult" || act === "three-way") body.target = target();
      b.disabled = true;
      HL.api("POST", "/v1/calls/" + encodeURIComponent(last.call.call) + "/" + path, body)
        .then(function () { HL.toast("已执行：" + b.textContent); refresh(); }, function (e) { failed(e); refresh(); });
    });
  });

  $("ticket-create").addEventListener("change", function () {
    $("ticket-fields").classList.toggle("hidden", !this.checked);
    if (this.checked) $("ticket-category").value = $("disposition").value;
  });
  $("wrapup-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (!wrapCall) return;
    var body = {agent: agentId, call: wrapCall, disposition: $("disposition").value, notes: $("notes").value,
                callback: $("callback").checked};
    if ($("ticket-create").checked) {
      body.ticket = {category: $("ticket-category").value, summary: $("ticket-summary").value || $("notes").value,
                     department: $("ticket-department").value || null};
    }
    HL.api("POST", "/api/desk/wrapup", body).then(function (r) {
      var msg = "小结已保存";
      if (r.ticket) msg += "，工单 " + r.ticket.number + (r.ticket.updated ? "（已更新）" : "（已创建）");
      if (r.callback) msg += "，回拨工单 " + r.callback.number;
      HL.text("wrapup-result", msg);
      $("wrapup-result").dataset.saved = wrapCall;
      HL.toast(msg);
    }, failed);
  });

  function searchKb() {
    HL.api("GET", "/api/desk/kb?q=" + encodeURIComponent($("kb-q").value)).then(function (r) {
      var list = $("kb-results"); HL.clear(list);
      r.entries.forEach(function (e) {
        list.appendChild(HL.el("li", null, HL.el("b", null, e.question), " ",
          HL.el("span", {className: "badge"}, e.category), HL.el("div", {className: "wrap"}, e.answer)));
      });
      if (!r.entries.length) list.appendChild(HL.el("li", {className: "muted"}, "没有找到"));
    }, failed);
  }
  $("btn-kb").addEventListener("click", searchKb);
  $("kb-q").addEventListener("keydown", function (ev) { if (ev.key === "Enter") searchKb(); });

  // the wrap-up countdown runs between server updates
  setInterval(function () {
    if (last && last.agent.state === "wrap_up" && last.agent.wrapup_left !== null) {
      var left = last.agent.wrapup_left - (Date.now() / 1000 - last.got);
      HL.text("wrapup-left", Math.max(0, Math.ceil(left)));
    }
    if (last && last.agent.seconds_in_state !== null) {
      HL.text("state-time", HL.duration(last.agent.seconds_in_state + (Date.now() / 1000 - last.got)));
    }
  }, 500);

  // an agent's stream carries its own agent row and calls (engine.web.live); queue rows are not for the desk
  HL.live(refresh, {types: ["snapshot", "agent", "call"]});
})();
