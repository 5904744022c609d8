// Front end of bayeskit.widgets.GPCanvas: paints a GP posterior on a <canvas>.
//
// floats(), attachPainter() (repaint per frame, echo `painted = seq`) and the drawing helpers
// (setupCanvas, drawAxes, drawBand, drawPolyline, drawMarker, drawLegend, ...) come from
// canvas_common.js, which widgets/_base.py prepends to this module.

// Okabe-Ito colours with the meanings bayeskit.plot gives them (colour-blind safe); greys for ink.
const COLORS = {
  bandY: "rgba(86, 180, 233, 0.18)",
  bandF: "rgba(86, 180, 233, 0.40)",
  mean: "#0072B2",
  samples: ["#009E73", "#D55E00", "#CC79A7", "#E69F00", "#56B4E9"],
  presets: "#222222",
  added: "#E69F00",
  axis: "#444444",
  grid: "rgba(0, 0, 0, 0.07)",
  text: "#222222",
};
const MARGIN = { left: 52, right: 14, top: 26, bottom: 40 };
const LEGEND_ROW = 18;

// markers: presets are dots (radius 4) with a white rim, added points bold crosses (radius 5)
const MARKS = { outline: 1, crossWidth: 2.5 };

function gpLegend(model, hasSamples, hasPresets, hasAdded) {
  const labels = model.get("labels") || {};
  const entries = [
    { kind: "band", color: COLORS.bandY, label: labels.band_y },
    { kind: "band", color: COLORS.bandF, label: labels.band_f },
    { kind: "line", color: COLORS.mean, label: labels.mean, width: 2.5 },
  ];
  if (hasSamples) entries.push({ kind: "line", color: COLORS.samples[0], label: labels.samples, width: 1 });
  if (hasPresets) entries.push({ kind: "points", marker: "dot", size: 4, color: COLORS.presets, label: labels.presets });
  if (hasAdded) entries.push({ kind: "points", marker: "cross", size: 5, color: COLORS.added, label: labels.added });
  return entries.filter((e) => e.label);
}

function paint(model, canvas, frame) {
  const { ctx, W, H } = setupCanvas(model, canvas);

  const xg = floats(model.get("x_grid"));
  const mean = floats(model.get("mean"));
  const lowerF = floats(model.get("lower_f"));
  const upperF = floats(model.get("upper_f"));
  const lowerY = floats(model.get("lower_y"));
  const upperY = floats(model.get("upper_y"));
  const nSamples = model.get("n_samples") || 0;
  const samples = floats(model.get("samples"));
  const xp = floats(model.get("x_presets"));
  const yp = floats(model.get("y_presets"));
  const xa = floats(model.get("x_added"));
  const ya = floats(model.get("y_added"));
  const xr = model.get("x_range");
  const yr = model.get("y_range");

  const entries = gpLegend(model, nSamples > 0, xp.length > 0, xa.length > 0);
  const legendRows = Math.ceil(entries.length / 2);
  const plot = {
    left: MARGIN.left,
    top: MARGIN.top,
    width: W - MARGIN.left - MARGIN.right,
    height: H - MARGIN.top - MARGIN.bottom - legendRows * LEGEND_ROW - 6,
  };
  frame.plot = plot; // for click -> data coordinates
  const { sx, sy } = scales(plot, xr, yr);

  drawAxes(ctx, plot, sx, sy, xr, yr, {
    xTicks: 10, yTicks: 6, xGap: 4, xlabel: "x", ylabel: "f(x), y", xlabelGap: 18, ylabelX: 12,
  });
  // caption: kernel and log marginal likelihood
  drawCaption(ctx, model.get("caption"), plot.left, MARGIN.top / 2);

  // everything data-dependent is clipped to the plot area
  clipTo(ctx, plot, () => {
    drawBand(ctx, xg, lowerY, upperY, sx, sy, COLORS.bandY);
    drawBand(ctx, xg, lowerF, upperF, sx, sy, COLORS.bandF);
    for (let s = 0; s < nSamples; s++) {
      const ys = samples.subarray(s * xg.length, (s + 1) * xg.length);
      drawPolyline(ctx, xg, ys, sx, sy, COLORS.samples[s % COLORS.samples.length], 1);
    }
    drawPolyline(ctx, xg, mean, sx, sy, COLORS.mean, 2.5);
    eachPoint(xp, yp, sx, sy, (px, py) => drawMarker(ctx, "dot", px, py, COLORS.presets, 4, MARKS));
    eachPoint(xa, ya, sx, sy, (px, py) => drawMarker(ctx, "cross", px, py, COLORS.added, 5, MARKS));
  });
  frameBox(ctx, plot);

  // legend below the plot, two columns, so it never hides data
  const colWidth = (W - MARGIN.left) / 2;
  drawLegend(ctx, entries, {
    left: MARGIN.left, top: plot.top + plot.height + 34, columns: 2, colWidth, row: LEGEND_ROW,
    labelWidth: colWidth - 34, markerStyle: MARKS,
  });
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "bayeskit-gp-canvas";
  canvas.title = "click to add an observation";
  el.classList.add("bayeskit-gp");
  el.appendChild(canvas);
  const frame = { plot: null };
  const detach = attachPainter(model, canvas, () => paint(model, canvas, frame));

  const onClick = (event) => {
    const plot = frame.plot;
    if (!plot) return;
    const rect = canvas.getBoundingClientRect();
    const px = ((event.clientX - rect.left) / rect.width) * model.get("width");
    const py = ((event.clientY - rect.top) / rect.height) * model.get("height");
    if (px < plot.left || px > plot.left + plot.width || py < plot.top || py > plot.top + plot.height) return;
    const [x0, x1] = model.get("x_range");
    const [y0, y1] = model.get("y_range");
    const x = x0 + ((px - plot.left) / plot.width) * (x1 - x0);
    const y = y1 - ((py - plot.top) / plot.height) * (y1 - y0);
    model.send({ type: "add_point", x, y });
  };
  canvas.addEventListener("click", onClick);

  return () => {
    canvas.removeEventListener("click", onClick);
    detach();
  };
}

export default { render };
