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

  function render(doc, patched) {
    last = doc;
    if (!patched) got = Date.now() / 1000;
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
        HL.el("td", {className: "since", dataset: {since: a.seconds_in_state === null ? "" : a.seconds_in_state,
                                                    got: a._got || got}},
              HL.duration(a.seconds_in_state)),
        HL.el("td", null, a.calls), actions));
    });
    var cs = $("calls"); HL.clear(cs);
    doc.calls.forEach(function (c) {
      var acts = HL.el("td", null);
      if (doc.blacklist && c.caller) {
        acts.appendChild(button("拉黑", function () {
          var reason = window.prompt("加入黑名单的原因：", "");
          if (reason === null) return;
          HL.api("POST", "/api/wallboard/blacklist", {number: c.caller, reason: reason}).then(function () {
            HL.toast("已加入黑名单：" + c.caller);
          }, function (e) { HL.toast("操作失败：" + e.message, true); });
        }, {className: "blacklist"}));
      }
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
    var now = Date.now() / 1000;
    document.querySelectorAll("#agents td.since").forEach(function (td) {
      if (td.dataset.since !== "") td.textContent = HL.duration(parseFloat(td.dataset.since) + now - parseFloat(td.dataset.got));
    });
  }, 1000);
  // Live rows (engine.web.live) are applied as they come; a full snapshot (alerts, handling
  // times, calls still in the IVR or the bot) is fetched on a queue change and every 5 s.
  function stageOf(row) {
    if (row.state === "waiting") return "queue";
    if (row.state === "conference" && !(row.parties || []).length) return "talking";
    return row.state;
  }
  function inFilters(queue, agentId) {
    if (filters.queue && queue !== filters.queue) return false;
    if (filters.group && !(agentId && last.agents.some(function (a) { return a.id === agentId; }))) return false;
    return true;
  }
  var queued = null;
  function snapshotSoon() {
    if (queued) return;
    queued = setTimeout(function () { queued = null; refresh(); }, 1000);
  }
  function onEvent(type, row) {
    if (!last || type === "snapshot") return false;
    if (type === "agent") {
      var i = last.agents.findIndex(function (a) { return a.id === row.id; });
      if (i < 0) return true;                          // filtered out
      var limit = (last.state_limits || {})[row.state];
      row.groups = (last.agent_groups || {})[row.id] || [];
      row.over_limit = !!(limit && (row.seconds_in_state || 0) > limit);
      row._got = Date.now() / 1000;
      last.agents[i] = row;
    } else if (type === "call") {
      var j = last.calls.findIndex(function (c) { return c.call === row.call; });
      if (row.gone) {
        if (j >= 0 && last.calls[j].stage !== "ivr" && last.calls[j].stage !== "bot") last.calls.splice(j, 1);
      } else if (inFilters(row.queue, row.agent)) {
        var old = j >= 0 ? last.calls[j] : {};
        var c = {call: row.call, caller: row.caller, caller_name: old.caller_name || "", queue: row.queue,
                 agent: row.agent, stage: stageOf(row), seconds: row.seconds};
        if (j >= 0) last.calls[j] = c; else last.calls.push(c);
      }
    } else if (type === "queue") {
      var k = last.queues.findIndex(function (q) { return q.name === row.name; });
      if (k >= 0) {
        row.average_handling = last.queues[k].average_handling;
        row.service_level_target = last.queues[k].service_level_target;
        last.queues[k] = row;
      }
      snapshotSoon();
    }
    render(last, true);
    return true;
  }
  HL.live(refresh, {coalesceMs: 150, slowMs: 5000, onEvent: onEvent});
})();
