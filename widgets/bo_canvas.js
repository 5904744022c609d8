// Front end of bayeskit.widgets.BOCanvas: paints a Bayesian-optimisation step on a <canvas>.
//
// Python sends a JSON `spec` (panels placed by fractions of the drawing area, each a list of
// layers that name arrays) and a dict of float32 arrays as binary buffers (`arrays`) inside one
// hold_sync(), bumping `seq` last. floats(), ticks(), attachPainter() (repaint per frame,
// echo `painted = seq`) and the drawing helpers (setupCanvas, drawAxes, drawBasicLayer,
// drawImageGrid, drawColorStrip, drawLegend, ...) come from canvas_common.js, which
// widgets/_base.py prepends.
//
// Layer kinds: "line" (x, y; optional dash; NaN breaks it), "band" (x, lower, upper),
// "points" (x, y; marker "dot" | "star" | "plus"), "vline" (x: a vertical line at each value),
// "shade" (x0, x1: a grey span), "heat" (z: an ny x nx image, row j = y_j, column i = x_i,
// drawn with the viridis colour map over vmin..vmax, with a labelled colour bar).
// Every layer with a `label` gets one legend entry (labels are de-duplicated).

const OUTER = { left: 8, right: 8, top: 24, bottom: 6 };
const LEGEND_ROW = 17;
const MARKS = { r: 4, outline: 1 }; // dots with a white rim
// viridis (colour-blind safe, monotone in lightness), 9 stops
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

function drawHeat(ctx, layer, arrays, plot, cache) {
  const z = floats(arrays[layer.z]);
  const nx = layer.nx, ny = layer.ny;
  if (z.length < nx * ny || nx < 1 || ny < 1) return;
  const vmin = layer.vmin, vmax = layer.vmax;
  const span = vmax > vmin ? vmax - vmin : 1;
  // row j of z is y_j: flip so the largest y is at the top of the plot
  drawImageGrid(ctx, z, ny, nx, plot, (v) => ramp(VIRIDIS, (v - vmin) / span), { flip: true, smooth: true, cache });
}

function drawColorbar(ctx, layer, plot) {
  const x = plot.left + plot.width + 12, w = 12;
  drawColorStrip(ctx, (t) => ramp(VIRIDIS, t), x, plot.top, w, plot.height, 64, 1);
  textStyle(ctx, "10px sans-serif");
  const vmin = layer.vmin, vmax = layer.vmax;
  for (const v of ticks(vmin, vmax, 5)) {
    const py = plot.top + ((vmax - v) / (vmax - vmin || 1)) * plot.height;
    ctx.fillText(fmtPrecision(v, 4), x + w + 3, py);
  }
  ctx.save();
  ctx.translate(x + w + 58, plot.top + plot.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.font = "11px sans-serif";
  ctx.fillText(layer.colorbar || "", 0, 0);
  ctx.restore();
}

function paintPanel(ctx, p, arrays, area, cache) {
  const [fx, fy, fw, fh] = p.box || [0, 0, 1, 1];
  const margin = p.margin || { left: 52, right: 10, top: 18, bottom: 34 };
  const plot = {
    left: area.left + fx * area.width + margin.left,
    top: area.top + fy * area.height + margin.top,
    width: fw * area.width - margin.left - margin.right,
    height: fh * area.height - margin.top - margin.bottom,
  };
  if (plot.width < 10 || plot.height < 10) return;
  const xr = p.x_range || [0, 1];
  const yr = p.y_range || [0, 1];
  const { sx, sy } = scales(plot, xr, yr, true);
  drawAxes(ctx, plot, sx, sy, xr, yr, {
    xTicks: Math.max(3, Math.round(plot.width / 60)), yTicks: Math.max(3, Math.round(plot.height / 40)),
    yGap: 4, yFormat: (v) => fmtPrecision(v, 4),
    xlabel: p.xlabel, ylabel: p.ylabel, ylabelX: plot.left - margin.left + 10,
  });
  clipTo(ctx, plot, () => {
    for (const layer of p.layers || []) {
      if (layer.kind === "heat") drawHeat(ctx, layer, arrays, plot, cache);
      else drawBasicLayer(ctx, layer, arrays, sx, sy, plot, MARKS);
    }
  });
  for (const layer of p.layers || []) if (layer.kind === "heat" && layer.colorbar !== undefined) drawColorbar(ctx, layer, plot);
  if (p.title) {
    textStyle(ctx, "bold 11px sans-serif", "left", "bottom");
    ctx.fillText(p.title, plot.left, plot.top - 3, plot.width + margin.right);
  }
  frameBox(ctx, plot);
}

function paint(model, canvas, cache) {
  const { ctx, W, H } = setupCanvas(model, canvas);
  const spec = model.get("spec") || {};
  const arrays = model.get("arrays") || {};

  const panels = spec.panels || [];
  const entries = legendEntries(panels.flatMap((p) => p.layers || []));
  const columns = spec.legend_columns || 3;
  const legendRows = Math.ceil(entries.length / columns);
  const area = {
    left: OUTER.left,
    top: OUTER.top,
    width: W - OUTER.left - OUTER.right,
    height: H - OUTER.top - OUTER.bottom - legendRows * LEGEND_ROW - 4,
  };
  drawCaption(ctx, spec.caption, OUTER.left + 4, OUTER.top / 2, W - OUTER.left - OUTER.right);
  for (const p of panels) paintPanel(ctx, p, arrays, area, cache);

  const colWidth = (W - OUTER.left - 40) / columns;
  drawLegend(ctx, entries, {
    left: OUTER.left + 40, top: area.top + area.height + 4 + LEGEND_ROW / 2, columns, colWidth,
    row: LEGEND_ROW, labelWidth: colWidth - 34, markerStyle: MARKS,
  });
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "bayeskit-bo-canvas";
  el.classList.add("bayeskit-bo");
  el.appendChild(canvas);
  const cache = { image: null }; // the heat map's offscreen canvas, reused between paints
  return attachPainter(model, canvas, () => paint(model, canvas, cache));
}

export default { render };
