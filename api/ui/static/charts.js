// Metric curves (uPlot): one chart per metric, smoothing, log scale, zoom with detail fetched from
// the server, and live updates while the job runs. On the compare page every chart overlays the jobs.
//
// #curves carries data-url (series.json), data-live ("true": poll while the job runs) and
// data-compare ("true": the answer is {metrics: {name: {job: series}}}, else {metrics: {name: series}}).
(function () {
  "use strict";
  const PALETTE = ["#1d4ed8", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];
  const POLL_MS = 3000;
  const HEIGHT = 240;
  const charts = {};
  window.bosunCharts = charts;

  const box = document.getElementById("curves");
  if (!box || !window.uPlot) return;
  const url = box.dataset.url;
  const compare = box.dataset.compare === "true";
  const smoothing = document.getElementById("smoothing");
  const smoothingValue = document.getElementById("smoothing-value");
  const logscale = document.getElementById("logscale");
  let signature = "";

  const alpha = () => (smoothing ? Number(smoothing.value) : 0);

  // TensorBoard's smoothing: an exponential moving average, debiased at the start; gaps stay gaps.
  function ema(ys, a) {
    if (!a) return ys;
    const out = new Array(ys.length);
    let last = 0, n = 0;
    for (let i = 0; i < ys.length; i++) {
      const v = ys[i];
      if (v == null || !Number.isFinite(v)) { out[i] = null; continue; }
      last = last * a + (1 - a) * v;
      n += 1;
      out[i] = last / (1 - Math.pow(a, n));
    }
    return out;
  }

  function plotData(tables) {
    if (!compare) {
      const [x, y] = tables[0];
      return [x, y, ema(y, alpha())];
    }
    const joined = tables.length === 1 ? [tables[0][0], tables[0][1]] : uPlot.join(tables);
    return [joined[0], ...joined.slice(1).map((y) => ema(y, alpha()))];
  }

  const positive = (tables) => tables.every(([, y]) => y.every((v) => v == null || v > 0));
  const tick = (v) => (v == null ? "" : v === 0 ? "0" : Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3 ? v.toExponential(1)
                                                                              : String(Number(v.toPrecision(3))));
  const fmt = (u, v) => (v == null ? "—" : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toPrecision(4));

  function seriesOf(labels) {
    if (!compare) {
      return [{ label: "step" }, { label: "raw", stroke: "rgba(29, 78, 216, 0.3)", width: 1, value: fmt },
              { label: "smoothed", stroke: PALETTE[0], width: 2, value: fmt }];
    }
    return [{ label: "step" }, ...labels.map((label, i) => ({ label, stroke: PALETTE[i % PALETTE.length], width: 2, value: fmt,
                                               spanGaps: true }))];
  }

  function tablesOf(entry) {
    if (!compare) return { tables: [[entry.x, entry.y]], labels: ["raw"], count: entry.count };
    const jobs = Object.keys(entry);
    return { tables: jobs.map((j) => [entry[j].x, entry[j].y]), labels: jobs.map((j) => entry[j].label),
             count: jobs.reduce((n, j) => n + entry[j].count, 0) };
  }

  function mark(chart) {
    const shown = chart.zoom ? chart.zoom.tables : chart.tables;
    chart.el.dataset.points = String(shown.reduce((n, [x]) => n + x.length, 0));
    chart.el.dataset.count = String(chart.count);
  }

  function build(chart) {
    if (chart.u) chart.u.destroy();
    const log = logscale && logscale.checked && positive(chart.tables);
    chart.note.textContent = logscale && logscale.checked && !log ? "linear: the metric has values ≤ 0" : "";
    const opts = {
      width: Math.max(chart.el.clientWidth - 16, 200), height: HEIGHT,
      series: seriesOf(chart.labels),
      scales: { x: { time: false }, y: { distr: log ? 3 : 1 } },
      axes: [{ label: "step" }, { size: 64, values: (u, ticks) => ticks.map(tick) }],
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: { dblclick: () => () => { reset(chart); return null; } },
      },
      hooks: { setSelect: [(u) => {
        if (u.select.width > 2) {
          zoom(chart, u.posToVal(u.select.left, "x"), u.posToVal(u.select.left + u.select.width, "x"));
        }
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      }] },
    };
    chart.u = new uPlot(opts, plotData(chart.zoom ? chart.zoom.tables : chart.tables), chart.plot);
    mark(chart);
  }

  function chartFor(name) {
    if (charts[name]) return charts[name];
    const el = document.createElement("figure");
    el.className = "chart";
    el.dataset.metric = name;
    const title = document.createElement("h3");
    title.textContent = name;
    const note = document.createElement("p");
    note.className = "note";
    const plot = document.createElement("div");
    el.append(title, note, plot);
    box.append(el);
    return (charts[name] = { name, el, note, plot, u: null, tables: [], labels: [], count: 0, zoom: null });
  }

  // Zooming in asks the server for the range at full detail (the job page; the compare page zooms what it has).
  async function zoom(chart, lo, hi) {
    if (compare) { chart.u.setScale("x", { min: lo, max: hi }); return; }
    const q = `${url}${url.includes("?") ? "&" : "?"}name=${encodeURIComponent(chart.name)}` +
              `&lo=${Math.max(0, Math.floor(lo))}&hi=${Math.max(0, Math.ceil(hi))}`;
    const body = await (await fetch(q, { credentials: "same-origin" })).json();
    const entry = body.metrics && body.metrics[chart.name];
    if (!entry || entry.x.length < 2) return;
    chart.zoom = { tables: [[entry.x, entry.y]] };
    chart.u.setData(plotData(chart.zoom.tables), true);
    mark(chart);
  }

  function reset(chart) {
    chart.zoom = null;
    chart.u.setData(plotData(chart.tables), true);
    mark(chart);
  }

  function apply(metrics) {
    for (const name of Object.keys(metrics).sort()) {
      const chart = chartFor(name);
      Object.assign(chart, tablesOf(metrics[name]));
      if (!chart.u) build(chart);
      else if (!chart.zoom) { chart.u.setData(plotData(chart.tables), true); mark(chart); }
    }
    box.dataset.metrics = String(Object.keys(charts).length);
  }

  async function refresh() {
    const sep = url.includes("?") ? "&" : "?";
    const response = await fetch(signature ? `${url}${sep}known=${signature}` : url, { credentials: "same-origin" });
    if (!response.ok) return true;
    const body = await response.json();
    signature = body.signature || "";
    if (!body.unchanged) apply(body.metrics || {});
    box.dataset.updated = String(Date.now());
    return !body.final;
  }

  async function poll() {
    let again = true;
    try { again = await refresh(); } catch (err) { again = true; }
    if (again && box.dataset.live === "true") setTimeout(poll, POLL_MS);
  }

  if (smoothing) smoothing.addEventListener("input", () => {
    if (smoothingValue) smoothingValue.textContent = Number(smoothing.value).toFixed(2);
    for (const chart of Object.values(charts)) chart.u.setData(plotData(chart.zoom ? chart.zoom.tables : chart.tables), false);
  });
  if (logscale) logscale.addEventListener("change", () => Object.values(charts).forEach(build));
  const resetButton = document.getElementById("reset-zoom");
  if (resetButton) resetButton.addEventListener("click", () => Object.values(charts).forEach(reset));
  new ResizeObserver(() => {
    for (const chart of Object.values(charts)) if (chart.u) chart.u.setSize({ width: Math.max(chart.el.clientWidth - 16, 200), height: HEIGHT });
  }).observe(box);

  poll();
})();
