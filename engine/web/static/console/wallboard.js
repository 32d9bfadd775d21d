/* The supervisors' wallboard: queues, agents by state, calls in progress, alerts, actions. */
"use strict";
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var filters = {queue: "", group: ""};
  var got = 0, last = null;

  function opt(select, values) {
    var keep = select.value;
    while (select.options.length > 1) select.remove(1);
    values.forEach(function (v) { select.appendChild(HL.el("option", {value: v}, v)); });
    select.value = keep;
  }

  function button(label, handler, props) {
    var b = HL.el("button", props || null, label);
    b.addEventListener("click", handler);
    return b;
  }

  function agentAction(id, act, body) {
    return function () {
      HL.api("POST", "/v1/agents/" + encodeURIComponent(id) + "/" + act, body || {}).then(function () {
        HL.toast("坐席 " + id + "：已执行"); refresh();
      }, function (e) { HL.toast("操作失败：" + e.message, true); });
    };
  }

  function supervise(target, mode) {
    return function () {
      HL.api("POST", "/v1/supervise", {target: target, supervisor: $("supervisor").value, mode: mode}).then(function () {
        HL.toast({monitor: "监听", whisper: "耳语", barge: "强插"}[mode] + "：正在呼叫您的分机");
      }, function (e) { HL.toast("操作失败：" + e.message, true); });
    };
  }

  function render(doc) {
    last = doc; got = Date.now() / 1000;
    opt($("f-queue"), doc.queue_names || []);
    opt($("f-group"), doc.groups || []);
    var al = $("alerts"); HL.clear(al);
    doc.alerts.forEach(function (a) { al.appendChild(HL.el("li", {dataset: {kind: a.kind, queue: a.queue}}, a.text)); });
    $("no-alerts").classList.toggle("hidden", doc.alerts.length > 0);
    var qs = $("queues"); HL.clear(qs);
    doc.queues.forEach(function (q) {
      var low = q.service_level !== null && q.service_level < q.service_level_target;
      qs.appendChild(HL.el("tr", {dataset: {queue: q.name}},
        HL.el("td", null, q.name), HL.el("td", {className: "waiting"}, q.waiting),
        HL.el("td", null, HL.duration(q.longest_wait)), HL.el("td", null, q.offered),
        HL.el("td", {className: "answered"}, q.answered), HL.el("td", {className: "abandoned"}, q.abandoned),
        HL.el("td", {className: low ? "badge bad" : ""}, HL.pct(q.service_level)),
        HL.el("td", null, q.average_handling === null ? "—" : Math.round(q.average_handling) + " 秒"),
        HL.el("td", null, HL.pct(q.satisfaction_rate)),
        HL.el("td", null, [q.agents.available, q.agents.in_call + q.agents.ringing, q.agents.wrap_up, q.agents.on_break].join(" / "))));
    });
    var ag = $("agents"); HL.clear(ag);
    doc.agents.forEach(function (a) {
      var actions = HL.el("td", null);
      if (a.state === "logged_out") actions.appendChild(button("签入", agentAction(a.id, "login")));
      else {
        if (a.state === "wrap_up") {
          actions.appendChild(button("结束整理", agentAction(a.id, "ready"), {className: "end-wrapup"}));
          actions.appendChild(button("延长", agentAction(a.id, "extend", {seconds: 30})));
        }
        if (a.state === "on_break") actions.appendChild(button("就绪", agentAction(a.id, "ready")));
        if (a.state === "available") actions.appendChild(button("小休", agentAction(a.id, "break", {reason: "rest"})));
        if (a.state !== "in_call" && a.state !== "ringing") actions.appendChild(button("签出", agentAction(a.id, "logout")));
        if (a.state === "in_call") {
          actions.appendChild(button("监听", supervise(a.id, "monitor")));
          actions.appendChild(button("耳语", supervise(a.id, "whisper")));
          actions.appendChild(button("强插", supervise(a.id, "barge")));
        }
      }
      var st = HL.el("span", {className: "badge state-" + a.state}, HL.STATES[a.state] || a.state);
      ag.appendChild(HL.el("tr", {className: a.over_limit ? "over" : "", dataset: {agent: a.id, state: a.state}},
        HL.el("td", null, a.name + "（" + a.id + "）"),
        HL.el("td", {className: "state"}, st, a.reason ? " " + (HL.REASONS[a.reason] || a.reason) : ""),
        HL.el("td", {className: "since", dataset: {since: a.seconds_in_state === null ? "" : a.seconds_in_state}},
              HL.duration(a.seconds_in_state)),
        HL.el("td", null, a.calls), actions));
    });
    var cs = $("calls"); HL.clear(cs);
    doc.calls.forEach(function (c) {
      var acts = HL.el("td", null);
      if (c.agent && (c.stage === "talking" || c.stage === "held" || c.stage === "conference" || c.stage === "consulting")) {
        acts.appendChild(button("监听", supervise(c.call, "monitor")));
        acts.appendChild(button("强插", supervise(c.call, "barge")));
      }
      cs.appendChild(HL.el("tr", {dataset: {call: c.call, stage: c.stage}},
        HL.el("td", {className: "caller"}, c.caller || "（未显示号码）", c.caller_name ? " " + c.caller_name : ""),
        HL.el("td", {className: "stage"}, HL.STAGES[c.stage] || c.stage), HL.el("td", null, c.queue || "—"),
        HL.el("td", null, c.agent || "—"), HL.el("td", null, HL.duration(c.seconds)), acts));
    });
    if (!doc.calls.length) cs.appendChild(HL.el("tr", null, HL.el("td", {colSpan: 6, className: "muted"}, "无通话")));
  }

  function refresh() {
    var qs = "?queue=" + encodeURIComponent(filters.queue) + "&group=" + encodeURIComponent(filters.group);
    return HL.api("GET", "/api/wallboard/snapshot" + qs).then(render).catch(function (e) {
      if (e.status === 401) location.reload();
    });
  }

  $("f-queue").addEventListener("change", function () { filters.queue = this.value; refresh(); });
  $("f-group").addEventListener("change", function () { filters.group = this.value; refresh(); });
  setInterval(function () {          // time in state runs between updates
    if (!last) return;
    var dt = Date.now() / 1000 - got;
    document.querySelectorAll("#agents td.since").forEach(function (td) {
      if (td.dataset.since !== "") td.textContent = HL.duration(parseFloat(td.dataset.since) + dt);
    });
  }, 1000);
  HL.live(refresh, {coalesceMs: 150, slowMs: 5000});
})();
