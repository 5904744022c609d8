// Front end of bayeskit.widgets.bll_explorer.LastLayerCanvas: side-by-side panels of a
// Bayesian-last-layer explorer (a predictive plot and a reliability diagram).
//
// Python sends a JSON `spec` (a caption and panels, each with a pixel box [left, top, width,
// height], axis ranges and labels, and a list of layers naming arrays) and a dict of float32
// arrays as binary buffers (`arrays`) inside one hold_sync(), bumping `seq` last. floats(),
// attachPainter() (repaint once per frame, echo `painted = seq`) and the drawing helpers
// (setupCanvas, drawAxes, drawBasicLayer, drawImageGrid, ramp, drawLegend, ...) come from
// canvas_common.js, which widgets/_base.py prepends to this module.
//
// Layer kinds:
//   "span"    shaded x interval [x0, x1] (numbers in the layer), with `text` written at its top;
//   "heatmap" values (ny * nx, row-major, row 0 at y_range[0]) coloured on a ramp of `stops`
//             (colours as [r, g, b] numbers) from vmin to vmax, drawn under everything else;
//   "band"    x, lower, upper (NaN breaks it);   "line" x, y (NaN breaks it; `dash`);
//   "points"  x, y (marker "dot" | "ring" | "cross");   "bars" x (centres), y (heights), `bar_width`.
// Every layer with a `label` gets a legend entry under its panel; a heatmap gets a colour bar.

const LEGEND_ROW = 16;
const MARKS = { r: 3.5, outline: 0.8 }; // dots with a thin white rim

function drawHeatmap(ctx, layer, arrays, sx, sy) {
  const v = floats(arrays[layer.values]);
  const nx = layer.nx, ny = layer.ny;
  if (v.length !== nx * ny || nx < 2 || ny < 2) return;
  const [ax0, ax1] = layer.x_extent, [ay0, ay1] = layer.y_extent;
  const box = { left: sx(ax0), top: sy(ay1), width: sx(ax1) - sx(ax0), height: sy(ay0) - sy(ay1) };
  const span = (layer.vmax - layer.vmin) || 1;
  // one pixel per grid cell, scaled onto the plot (smoothed); row 0 is the bottom (smallest y);
  // a non-finite value is transparent
  const colorOf = (value) => [...ramp(layer.stops, (value - layer.vmin) / span), isFinite(value) ? 255 : 0];
  drawImageGrid(ctx, v, ny, nx, box, colorOf, { flip: true, smooth: true });
}

function drawLayer(ctx, layer, arrays, sx, sy, plot) {
  const get = (name) => floats(arrays[name]);
  if (layer.kind === "heatmap") {
    drawHeatmap(ctx, layer, arrays, sx, sy);
  } else if (layer.kind === "bars") {
    const x = get(layer.x), y = get(layer.y);
    const half = (layer.bar_width || 0.1) / 2;
    ctx.fillStyle = layer.color;
    ctx.strokeStyle = INK.axis;
    ctx.lineWidth = 0.6;
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      if (!(isFinite(x[i]) && isFinite(y[i]))) continue;
      const a = sx(x[i] - half), b = sx(x[i] + half), top = sy(y[i]), base = sy(0);
      ctx.fillRect(a, top, b - a, base - top);
      ctx.strokeRect(a, top, b - a, base - top);
    }
  } else {
    drawBasicLayer(ctx, layer, arrays, sx, sy, plot, MARKS);
    if (layer.kind === "span" && layer.text) {
      const a = sx(layer.x0), b = sx(layer.x1);
      textStyle(ctx, "11px sans-serif", "center", "top");
      const left = Math.max(a, plot.left), right = Math.min(b, plot.left + plot.width);
      ctx.fillText(layer.text, (left + right) / 2, plot.top + 18, Math.max(right - left - 4, 20));
    }
  }
}

function drawColorbar(ctx, layer, plot) {
  const x = plot.left + plot.width + 8, w = 12, top = plot.top, h = plot.height;
  drawColorStrip(ctx, (t) => ramp(layer.stops, t), x, top, w, h, h, 0);
  textStyle(ctx, "10px sans-serif");
  ctx.fillText(fmtFixed(layer.vmax, 2), x + w + 3, top + 4);
  ctx.fillText(fmtFixed(layer.vmin, 2), x + w + 3, top + h - 4);
  if (layer.colorbar_label) {
    ctx.save();
    ctx.translate(x + w + 14, top + h / 2);
    ctx.rotate(Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText(layer.colorbar_label, 0, 0);
    ctx.restore();
  }
}

function paintPanel(ctx, p, arrays) {
  const [left, top, width, height] = p.box;
  const plot = { left, top, width, height };
  const xr = p.x_range || [0, 1];
  const yr = p.y_range || [0, 1];
  const { sx, sy } = scales(plot, xr, yr);
  drawAxes(ctx, plot, sx, sy, xr, yr, {
    xTicks: Math.max(3, Math.round(plot.width / 70)), yTicks: Math.max(3, Math.round(plot.height / 45)),
    xlabel: p.xlabel, ylabel: p.ylabel, ylabelX: plot.left - 40,
  });
  const layers = p.layers || [];
  clipTo(ctx, plot, () => {
    // heat maps first, shaded spans next, then everything else in the given order
    const order = (l) => (l.kind === "heatmap" ? 0 : l.kind === "span" ? 1 : 2);
    for (const layer of [...layers].sort((a, b) => order(a) - order(b))) drawLayer(ctx, layer, arrays, sx, sy, plot);
  });
  frameBox(ctx, plot);
  if (p.title) {
    textStyle(ctx, "bold 11px sans-serif", "left", "bottom");
    ctx.fillText(p.title, plot.left, plot.top - 3, plot.width);
  }
  for (const layer of layers) if (layer.kind === "heatmap") drawColorbar(ctx, layer, plot);
  // legend: one row per labelled layer, under the panel
  drawLegend(ctx, legendEntries(layers, ["heatmap"]), {
    left: plot.left, top: plot.top + plot.height + 40, columns: 1, colWidth: 0, row: LEGEND_ROW,
    labelWidth: plot.width - 28, markerStyle: MARKS,
  });
}

function paint(model, canvas) {
  const { ctx, W } = setupCanvas(model, canvas);
  const spec = model.get("spec") || {};
  const arrays = model.get("arrays") || {};
  drawCaption(ctx, spec.caption, 10, 12, W - 20);
  for (const p of spec.panels || []) paintPanel(ctx, p, arrays);
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "bayeskit-bll-canvas";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "Bayesian last layer: predictive and reliability diagram");
  el.classList.add("bayeskit-bll");
  el.appendChild(canvas);
  const stop = attachPainter(model, canvas, () => {
    paint(model, canvas);
    canvas.setAttribute("aria-label", (model.get("spec") || {}).caption || "Bayesian last layer explorer");
  });
  return stop;
}

export default { render };
