// A sweep's parallel coordinates, drawn with plotly as SVG lines (no WebGL, which plotly's parcoords
// needs and a software-rendered browser may lack): one vertical axis per sweep axis and one for the
// chosen metric, each scaled to its own range, one line per point that has the metric, coloured by
// it (viridis). A numeric axis spanning two decades or more (a learning rate) is drawn as log10;
// lists and names become labelled categories.
// The page's live part is replaced every few seconds while the sweep runs (htmx); the plot and the
// select keep their elements (hx-preserve), so each refresh reads the new table and redraws.
(function () {
  "use strict";
  const config = { displaylogo: false, responsive: true, showLink: false, showSendToCloud: false,
                   showEditInChartStudio: false };
  const VIRIDIS = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"];

  function colour(t) {
    const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const [a, b] = [VIRIDIS[i], VIRIDIS[i + 1]].map((h) => [1, 3, 5].map((k) => parseInt(h.slice(k, k + 2), 16)));
    return "rgb(" + a.map((v, j) => Math.round(v + (b[j] - v) * (x - i))).join(",") + ")";
  }

  // an axis: its label, each row's position in [0, 1], and the tick labels at the bottom and top (or per category)
  function dimension(label, values) {
    if (values.every((v) => typeof v === "number")) {
      let low = Math.min(...values), high = Math.max(...values), shown = values;
      if (low > 0 && high / low >= 100) {
        label = "log10 " + label;
        shown = values.map(Math.log10);
        [low, high] = [Math.log10(low), Math.log10(high)];
      }
      const span = high - low || 1;
      return { label, y: shown.map((v) => (high === low ? 0.5 : (v - low) / span)),
               ticks: high === low ? [[0.5, low]] : [[0, low], [1, high]] };
    }
    const names = [...new Set(values.map((v) => JSON.stringify(v)))];
    const at = (i) => (names.length === 1 ? 0.5 : i / (names.length - 1));
    return { label, y: values.map((v) => at(names.indexOf(JSON.stringify(v)))), ticks: names.map((n, i) => [at(i), n]) };
  }

  const tick = (v) => (typeof v === "number" ? Number(v.toPrecision(4)).toString() : v);

  // the metric choices of a refreshed table, keeping the one chosen where it is still offered
  function offer(select, metrics) {
    const now = [...select.options].map((o) => o.value);
    if (now.join("\n") === metrics.join("\n")) return;
    const chosen = select.value;
    select.replaceChildren(...metrics.map((m) => new Option(m, m, false, m === chosen)));
  }

  function draw() {
    const box = document.getElementById("sweep-plot");
    const source = document.getElementById("sweep-data");
    const select = document.getElementById("sweep-metric");
    if (!box || !source || !select || !window.Plotly) return;
    const table = JSON.parse(source.textContent);
    offer(select, table.metrics);
    const metric = select.value;
    const rows = table.rows.filter((r) => typeof r.metrics[metric] === "number");
    const dims = table.axes.map((a) => dimension(a, rows.map((r) => r.point[a])));
    const score = dimension(metric, rows.map((r) => r.metrics[metric]));
    dims.push(score);
    const xs = dims.map((_, i) => i);
    const lines = rows.map((r, k) => ({
      type: "scatter", mode: "lines+markers", x: xs, y: dims.map((d) => d.y[k]), showlegend: false,
      line: { color: colour(score.y[k]), width: 3 }, marker: { size: 6, color: colour(score.y[k]) },
      hoverinfo: "text", text: dims.map(() => table.axes.map((a) => a + " = " + JSON.stringify(r.point[a]))
        .concat([metric + " = " + tick(r.metrics[metric]), "jobs " + r.jobs.join(", ")]).join("<br>")),
    }));
    const shapes = xs.map((x) => ({ type: "line", x0: x, x1: x, y0: 0, y1: 1, line: { color: "#6b7280", width: 1 } }));
    const annotations = dims.flatMap((d, i) => d.ticks.map(([y, text]) => ({
      x: i, y, text: String(tick(text)), showarrow: false, xanchor: "left", xshift: 6, font: { size: 11 } })));
    Plotly.react(box, lines, {
      shapes, annotations, hovermode: "closest", margin: { t: 20, l: 40, r: 90, b: 50 },
      xaxis: { tickvals: xs, ticktext: dims.map((d) => d.label), range: [-0.2, dims.length - 0.5],
               showgrid: false, zeroline: false, fixedrange: true },
      yaxis: { visible: false, range: [-0.05, 1.05], fixedrange: true },
    }, config);
    box.dataset.drawn = String(rows.length);
    box.dataset.metric = metric;
  }

  document.addEventListener("change", (event) => { if (event.target.id === "sweep-metric") draw(); });
  document.addEventListener("htmx:afterSettle", draw);
  draw();
})();
