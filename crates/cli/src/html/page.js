// urk's HTML report: draws what the report's JSON says; every figure is
// worked out by urk before it gets here.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("urk-data").textContent);
  var runs = data.runs;
  var colors = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83"];
  var width = Math.min(1060, document.body.clientWidth || 1060);

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined) return "-";
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits });
  }
  function color(i) { return colors[i % colors.length]; }

  // The headline: a card per figure, its exact value in data-value.
  var head = document.getElementById("headline");
  runs.forEach(function (r, i) {
    var box = el("div", { "class": "run", style: "--c:" + color(i) });
    box.appendChild(el("div", {}, r.label));
    var cards = el("div", { "class": "cards" });
    var h = r.headline;
    var items = [
      ["requests", h.requests, "requests", 0],
      ["requests_per_sec", h.requests_per_sec, "requests/s", 2],
      ["duration_s", h.duration_s, "seconds", 2],
      ["p50_ms", h.p50_ms, "p50 ms", 3],
      ["p99_ms", h.p99_ms, "p99 ms", 3],
      ["p99_9_ms", h.p99_9_ms, "p99.9 ms", 3],
      ["max_ms", h.max_ms, "max ms", 3],
      ["errors", h.errors, "errors", 0],
      ["non_2xx_3xx", h.non_2xx_3xx, "non-2xx/3xx", 0]
    ];
    if (h.rate) {
      items.push(["rate_requested", h.rate.requested, "requested/s", 2]);
      items.push(["rate_achieved", h.rate.achieved, "achieved/s", 2]);
    }
    items.forEach(function (it) {
      var c = el("div", { "class": "card", "data-run": i, "data-key": it[0], "data-value": it[1] });
      c.appendChild(el("b", {}, fmt(it[1], it[3])));
      c.appendChild(el("span", {}, it[2]));
      cards.appendChild(c);
    });
    box.appendChild(cards);
    head.appendChild(box);
  });

  var charts = document.getElementById("charts");
  function chart(title, opts, rows) {
    charts.appendChild(el("h2", {}, title));
    var box = el("div", { "class": "chart" });
    charts.appendChild(box);
    opts.width = width;
    opts.height = opts.height || 280;
    opts.cursor = opts.cursor || { drag: { x: true, y: false } };
    // Room for the y axis's longest labels (requests/s run to millions).
    opts.axes = opts.axes || [{}, {}];
    opts.axes[1].size = opts.axes[1].size || 80;
    return new uPlot(opts, rows, box);
  }
  function series(label, i, extra) {
    var s = { label: label, stroke: color(i), width: 1.5, spanGaps: false };
    Object.keys(extra || {}).forEach(function (k) { s[k] = extra[k]; });
    return s;
  }
  function multi(i) { return runs.length > 1 ? " (" + (i + 1) + ")" : ""; }
  // Whole seconds on a time axis.
  function seconds() { return [{ incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600] }, {}]; }

  // Over time: seconds padded to the longest run.
  var longest = 0;
  runs.forEach(function (r) { longest = Math.max(longest, r.timeline.second.length); });
  var secs = [];
  for (var k = 0; k < longest; k++) secs.push(k);
  function padded(a) {
    var out = [];
    for (var k = 0; k < longest; k++) out.push(a && k < a.length ? a[k] : null);
    return out;
  }
  if (longest > 0) {
    var rpsRows = [secs], rpsSeries = [{ label: "second" }];
    runs.forEach(function (r, i) {
      rpsRows.push(padded(r.timeline.rps));
      rpsSeries.push(series("achieved" + multi(i), i));
      if (r.timeline.offered) {
        rpsRows.push(padded(r.timeline.offered));
        rpsSeries.push(series("offered" + multi(i), i, { dash: [6, 4] }));
      }
    });
    chart("Requests per second", { series: rpsSeries, scales: { x: { time: false } }, axes: seconds() }, rpsRows);

    var latRows = [secs], latSeries = [{ label: "second" }];
    runs.forEach(function (r, i) {
      [["p50", [2, 3]], ["p99", null], ["max", [1, 3]]].forEach(function (q) {
        latRows.push(padded(r.timeline[q[0]]));
        latSeries.push(series(q[0] + " ms" + multi(i), i, q[1] ? { dash: q[1] } : {}));
      });
      if (r.timeline.p99_uncorrected) {
        latRows.push(padded(r.timeline.p99_uncorrected));
        latSeries.push(series("p99 uncorrected ms" + multi(i), i, { dash: [8, 3, 2, 3], width: 1 }));
      }
    });
    chart("Latency over time (corrected under -R, ms)", { series: latSeries, scales: { x: { time: false } }, axes: seconds() }, latRows);

    var errRows = [secs], errSeries = [{ label: "second" }];
    runs.forEach(function (r, i) {
      errRows.push(padded(r.timeline.errors));
      errSeries.push(series("errors" + multi(i), i));
      errRows.push(padded(r.timeline.non_2xx_3xx));
      errSeries.push(series("non-2xx/3xx" + multi(i), i, { dash: [6, 4] }));
    });
    chart("Errors and non-2xx/3xx responses per second", { series: errSeries, scales: { x: { time: false } }, axes: seconds() }, errRows);

    var connRows = [secs], connSeries = [{ label: "second" }];
    runs.forEach(function (r, i) {
      connRows.push(padded(r.timeline.connects));
      connSeries.push(series("connections made" + multi(i), i));
    });
    chart("Connections made per second", { series: connSeries, scales: { x: { time: false } }, axes: seconds() }, connRows);
  }

  // The percentile spectrum: x is 1/(1-p) on a log axis.
  var specRows = [data.spectrum_x], specSeries = [{ label: "1/(1-p)" }];
  runs.forEach(function (r, i) {
    specRows.push(r.spectrum);
    specSeries.push(series("latency ms" + multi(i), i));
    if (r.spectrum_uncorrected) {
      specRows.push(r.spectrum_uncorrected);
      specSeries.push(series("uncorrected ms" + multi(i), i, { dash: [6, 4] }));
    }
  });
  var pct = function (x) { return x <= 1 ? "0%" : (100 * (1 - 1 / x)).toPrecision(6).replace(/\.?0+$/, "") + "%"; };
  specSeries[0].value = function (u, v) { return v == null ? "-" : pct(v); };
  chart("Latency by percentile", {
    series: specSeries,
    scales: { x: { time: false, distr: 3 } },
    axes: [{
      splits: function () { return [1, 10, 100, 1e3, 1e4, 1e5, 1e6]; },
      values: function (u, vals) { return vals.map(pct); }
    }, {}]
  }, specRows);

  // A capacity search: latency against the offered rate, the answer marked.
  runs.forEach(function (r, i) {
    if (!r.search || r.search.steps.length === 0) return;
    var steps = r.search.steps.slice().sort(function (a, b) { return a.rate - b.rate; });
    var rows = [steps.map(function (s) { return s.rate; }),
                steps.map(function (s) { return s.p50; }),
                steps.map(function (s) { return s.p99; }),
                steps.map(function (s) { return s.rate === r.search.rate ? s.p99 : null; })];
    chart("Capacity search: latency against offered rate" + multi(i) +
          (r.search.rate ? " (answer " + fmt(r.search.rate, 0) + "/s)" : " (no rate passed)"), {
      series: [{ label: "offered/s" }, series("p50 ms", i, { dash: [2, 3] }), series("p99 ms", i),
               { label: "answer", stroke: "#000", width: 0, points: { show: true, size: 10, fill: "#1a7f37" } }],
      scales: { x: { time: false } }
    }, rows);
  });

  // Tables: details, targets, and the text report itself.
  var tables = document.getElementById("tables");
  runs.forEach(function (r, i) {
    tables.appendChild(el("h2", {}, "Run" + multi(i) + ": " + r.label));
    var t = el("table", { "class": "details" });
    r.details.forEach(function (d) {
      var tr = el("tr");
      tr.appendChild(el("th", {}, d[0]));
      tr.appendChild(el("td", {}, d[1]));
      t.appendChild(tr);
    });
    tables.appendChild(t);
    if (r.targets.length) {
      var tt = el("table", { "class": "targets" });
      var hr = el("tr");
      ["method", "url", "requests", "status", "p50 ms", "p99 ms"].forEach(function (h) { hr.appendChild(el("th", {}, h)); });
      tt.appendChild(hr);
      r.targets.forEach(function (x) {
        var tr = el("tr");
        [x.method, x.url, fmt(x.requests, 0), x.status, fmt(x.p50, 3), fmt(x.p99, 3)].forEach(function (v) { tr.appendChild(el("td", {}, v)); });
        tt.appendChild(tr);
      });
      tables.appendChild(tt);
    }
    tables.appendChild(el("pre", { "class": "text-report" }, r.text));
  });

  // Self-check, for a reader and for the tests: has every chart drawn?
  function check() {
    var canvases = document.querySelectorAll(".chart canvas");
    var blank = 0;
    canvases.forEach(function (c) {
      var px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      var ink = false;
      for (var k = 3; k < px.length; k += 4) { if (px[k] !== 0) { ink = true; break; } }
      if (!ink) blank++;
    });
    document.body.setAttribute("data-charts", String(canvases.length));
    document.body.setAttribute("data-blank-charts", String(blank));
    if (blank > 0) console.error("urk report: " + blank + " of " + canvases.length + " charts drew nothing");
  }
  requestAnimationFrame(function () { setTimeout(check, 0); });
})();
