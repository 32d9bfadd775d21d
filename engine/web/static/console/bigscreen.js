/* The big screen: today's figures and per-hour charts drawn as SVG (no chart library). */
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  function s(tag, attrs, text) {
    var n = document.createElementNS(SVG, tag);
    for (var k in attrs) n.setAttribute(k, attrs[k]);
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function rate(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }

  function bars(svg, series, colors, labels, max) {
    HL.clear(svg);
    var W = 720, H = 260, L = 40, B = 30, T = 20, w = (W - L - 10) / 24;
    // counts: a multiple of 4 on top, so the 4 grid lines fall on whole numbers
    max = max || 4 * Math.max(1, Math.ceil(Math.max.apply(null, series.reduce(function (a, b) { return a.concat(b); }, [])) / 4));
    for (var g = 0; g <= 4; g++) {
      var y = T + (H - T - B) * g / 4;
      svg.appendChild(s("line", {x1: L, x2: W - 10, y1: y, y2: y, stroke: "#24416e"}));
      svg.appendChild(s("text", {x: L - 4, y: y + 4, "text-anchor": "end"}, labels ? labels(max * (4 - g) / 4) : Math.round(max * (4 - g) / 4)));
    }
    for (var h = 0; h < 24; h++) {
      series.forEach(function (values, i) {
        var v = values[h] || 0, bh = (H - T - B) * v / max, bw = (w - 4) / series.length;
        svg.appendChild(s("rect", {x: L + h * w + 2 + i * bw, y: H - B - bh, width: bw, height: bh, fill: colors[i]}));
      });
      if (h % 2 === 0) svg.appendChild(s("text", {x: L + h * w + w / 2, y: H - B + 16, "text-anchor": "middle"}, h + "时"));
    }
  }

  function refresh() {
    return HL.api("GET", "/api/wallboard/today").then(function (d) {
      var f = d.figures;
      HL.text("day", d.day);
      HL.text("t-answered", f.answered);
      HL.text("t-abandoned", f.abandoned);
      HL.text("t-answer-rate", rate(f.answer_rate));
      HL.text("t-satisfaction", rate(f.satisfaction_rate));
      bars(document.getElementById("c-calls"), [d.hourly.answered, d.hourly.abandoned], ["#4da3ff", "#ff7a6b"]);
      bars(document.getElementById("c-satisfaction"), [d.hourly.satisfaction_rate.map(function (v) { return v === null ? 0 : v * 100; })],
           ["#5cd69b"], function (v) { return Math.round(v) + "%"; }, 100);
    });
  }
  HL.live(refresh, {types: ["queue"], coalesceMs: 1000, slowMs: 30000, fastMs: 10000});
})();
