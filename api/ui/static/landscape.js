// A landscape job's surface (plotly): contour and 3D surface of loss or accuracy, the trained model
// marked at (0, 0); a 1D job gets a curve. Polls while tiles are still being computed.
(function () {
  "use strict";
  const POLL_MS = 5000;
  const root = document.getElementById("landscape");
  if (!root || !window.Plotly) return;
  const url = root.dataset.url;
  const quantity = document.getElementById("quantity");
  const logBox = document.getElementById("land-log");
  const progress = document.getElementById("land-progress");
  let surface = null;
  const config = { displaylogo: false, responsive: true, showLink: false, showSendToCloud: false,
                   showEditInChartStudio: false };

  const webgl = (() => {
    try { return !!document.createElement("canvas").getContext("webgl"); } catch (err) { return false; }
  })();

  function values() {
    const which = quantity.value === "accuracy" ? surface.accuracy : surface.loss;
    const log = logBox.checked && quantity.value === "loss";
    const f = (v) => (v == null ? null : log ? (v > 0 ? Math.log10(v) : null) : v);
    return { z: surface.is_2d ? which.map((row) => row.map(f)) : which.map(f),
             label: (log ? "log10 " : "") + quantity.value, f };
  }

  const top = (z) => Math.max(...z.flat().filter((v) => v != null));

  function draw() {
    const { z, label, f } = values();
    const origin = f(surface.origin.loss);
    const star = { type: "scatter", x: [0], y: [surface.is_2d ? 0 : origin], mode: "markers", name: "trained model",
                   marker: { symbol: "star", size: 16, color: "#dc2626", line: { color: "#ffffff", width: 1 } } };
    if (!surface.is_2d) {
      Plotly.react("contour", [{ type: "scatter", mode: "lines+markers", x: surface.x, y: z, name: label }, star],
                   { title: { text: label }, xaxis: { title: { text: "step along direction 1" } }, margin: { t: 40 } }, config);
      document.getElementById("surface3d").textContent = "A 1D landscape has no surface.";
      return;
    }
    Plotly.react("contour", [
      { type: "contour", x: surface.x, y: surface.y, z, colorscale: "Viridis", contours: { coloring: "heatmap" },
        colorbar: { title: { text: label } }, connectgaps: false, name: label },
      star,
    ], { xaxis: { title: { text: "direction 1" } }, yaxis: { title: { text: "direction 2" }, scaleanchor: "x" },
         margin: { t: 20 }, showlegend: false }, config);
    const box = document.getElementById("surface3d");
    if (!webgl) { box.textContent = "This browser has no WebGL, which the 3D surface needs; the contour shows the same values."; return; }
    Plotly.react(box, [
      { type: "surface", x: surface.x, y: surface.y, z, colorscale: "Viridis", showscale: false, name: label },
      // a pin from the trained model up, so the point shows even at the bottom of a bowl
      { type: "scatter3d", mode: "lines+markers", x: [0, 0], y: [0, 0], z: [origin, top(z)], name: "trained model",
        line: { color: "#dc2626", width: 6 }, marker: { size: [6, 0], color: "#dc2626" } },
    ], { scene: { xaxis: { title: { text: "direction 1" } }, yaxis: { title: { text: "direction 2" } },
                  zaxis: { title: { text: label } } }, margin: { t: 10, l: 0, r: 0, b: 0 }, showlegend: false }, config);
  }

  async function poll() {
    let again = false;
    try {
      surface = await (await fetch(url, { credentials: "same-origin" })).json();
      progress.textContent = `${surface.done} of ${surface.total} grid points computed` +
        (surface.tiles_left ? `, ${surface.tiles_left} tiles left` : "");
      draw();
      root.dataset.drawn = String(surface.done);
      again = !surface.final;
    } catch (err) {
      progress.textContent = "The surface could not be loaded; trying again.";
      again = true;
    }
    if (again) setTimeout(poll, POLL_MS);
  }

  quantity.addEventListener("change", () => surface && draw());
  logBox.addEventListener("change", () => surface && draw());
  poll();
})();
