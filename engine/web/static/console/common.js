/* Shared by the desk and the wallboard: JSON calls with the CSRF token, live updates, safe text.
   Text from outside (caller names and numbers, keys, transcripts, tickets) is only ever put in
   the page with textContent: never innerHTML. No library, nothing from the internet. */
"use strict";
var HL = (function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function api(method, url, body) {
    var opts = {method: method, credentials: "same-origin",
                headers: {"Accept": "application/json", "X-CSRFToken": csrf}};
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (!r.ok) {
          var err = new Error(data.error || ("HTTP " + r.status));
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  /* el("td", {className: "x"}, "text", child...) */
  function el(tag, props) {
    var node = document.createElement(tag);
    if (props) { for (var k in props) { if (k === "dataset") { for (var d in props[k]) node.dataset[d] = props[k][d]; } else node[k] = props[k]; } }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      node.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function text(id, value) {
    var node = typeof id === "string" ? document.getElementById(id) : id;
    if (node) node.textContent = (value === null || value === undefined) ? "—" : String(value);
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    seconds = Math.max(0, Math.round(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds % 3600 / 60), s = seconds % 60;
    var mm = (m < 10 ? "0" : "") + m, ss = (s < 10 ? "0" : "") + s;
    return h ? h + ":" + mm + ":" + ss : mm + ":" + ss;
  }

  function pct(v) { return v === null || v === undefined ? "—" : v + "%"; }

  /* Live updates: refresh() runs after every server event (coalesced), and on a slow timer as a
     fallback; faster when the stream is down. */
  function live(refresh, opts) {
    opts = opts || {};
    var pending = false, stream = null, up = false;
    function soon() {
      if (pending) return;
      pending = true;
      setTimeout(function () { pending = false; refresh(); }, opts.coalesceMs || 50);
    }
    function connect() {
      if (!window.EventSource) return;
      stream = new EventSource(opts.url || "/events");
      stream.onopen = function () { up = true; setLive(true); soon(); };
      stream.addEventListener("expired", function () { stream.close(); location.reload(); });
      // engine.web.live's named events: snapshot, agent, queue, call. opts.onEvent(type, data)
      // may apply a row itself (true) instead of a refresh from the server (false).
      (opts.types || ["snapshot", "agent", "queue", "call"]).forEach(function (t) {
        stream.addEventListener(t, function (ev) {
          var handled = false;
          if (opts.onEvent) { try { handled = opts.onEvent(t, JSON.parse(ev.data)); } catch (e) { handled = false; } }
          if (!handled) soon();
        });
      });
      stream.onerror = function () { up = false; setLive(false); };
    }
    function setLive(on) {
      var b = document.getElementById("live");
      if (b) { b.textContent = on ? "实时" : "轮询"; b.className = on ? "badge ok" : "badge warn"; }
    }
    connect();
    (function tick() {
      setTimeout(function () { refresh(); tick(); }, up ? (opts.slowMs || 10000) : (opts.fastMs || 2000));
    })();
    refresh();
    return {refresh: soon};
  }

  var STATES = {available: "空闲", reserved: "预留", ringing: "振铃", in_call: "通话中", wrap_up: "话后整理",
                on_break: "小休", logged_out: "未登录"};
  var REASONS = {rest: "休息", meal: "用餐", meeting: "会议", training: "培训", missed_calls: "未接来电"};
  var STAGES = {ivr: "语音导航", bot: "智能机器人", queue: "排队", waiting: "排队", ringing: "振铃",
                talking: "通话", held: "保持", consulting: "咨询", conference: "会议", ended: "已结束"};

  function toast(message, bad) {
    var box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.className = bad ? "toast bad" : "toast";
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { box.className = "toast hidden"; }, 4000);
  }

  return {api: api, el: el, text: text, clear: clear, duration: duration, pct: pct, live: live,
          STATES: STATES, REASONS: REASONS, STAGES: STAGES, toast: toast};
})();
