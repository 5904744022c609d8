// Front end of bayeskit.widgets.FilterCanvas: paints stacked panels of lines, bands and markers.
//
// Python sends a JSON `spec` (panels, each a list of layers that name arrays) and a dict of
// float32 arrays as binary buffers (`arrays`, DataViews here) inside one hold_sync(), bumping
// `seq` last. floats(), attachPainter() (repaint per frame, echo `painted = seq`) and the
// drawing helpers (setupCanvas, drawAxes, drawBasicLayer, drawLegend, ...) come from
// canvas_common.js, which widgets/_base.py prepends to this module.
//
// Layer kinds: "line" (x, y; NaN breaks the line), "band" (x, lower, upper), "points"
// (x, y; marker "dot" | "ring" | "cross"; NaN skipped), "ticks" (x: short vertical marks along
// the bottom of the panel). Every layer with a `label` gets a legend entry.

const MARGIN = { left: 56, right: 14, top: 26, bottom: 8 };
const PANEL_GAP = 40; // room for the x tick labels and axis label of each panel
const LEGEND_ROW = 17;
const MARKS = { r: 3.5 }; // plain dots, no rim

function paint(model, canvas) {
  const { ctx, W, H } = setupCanvas(model, canvas);
  const spec = model.get("spec") || {};
  const arrays = model.get("arrays") || {};

  const panels = spec.panels || [];
  // legend: one entry per distinct label, two columns, below the last panel
  const entries = legendEntries(panels.flatMap((p) => p.layers || []));
  const legendRows = Math.ceil(entries.length / 2);
  const available = H - MARGIN.top - MARGIN.bottom - panels.length * PANEL_GAP - legendRows * LEGEND_ROW;
  const totalWeight = panels.reduce((s, p) => s + (p.weight || 1), 0) || 1;

  drawCaption(ctx, spec.caption, MARGIN.left, MARGIN.top / 2, W - MARGIN.left - MARGIN.right);

  let top = MARGIN.top;
  for (const p of panels) {
    const plot = {
      left: MARGIN.left,
      top,
      width: W - MARGIN.left - MARGIN.right,
      height: (available * (p.weight || 1)) / totalWeight,
    };
    top += plot.height + PANEL_GAP;
    let [x0, x1] = p.x_range || [0, 1];
    let [y0, y1] = p.y_range || [0, 1];
    if (p.equal) {
      // same data units per pixel on both axes: widen the tighter range about its centre
      const ux = (x1 - x0) / plot.width, uy = (y1 - y0) / plot.height;
      if (ux > uy) {
        const c = 0.5 * (y0 + y1), half = 0.5 * ux * plot.height;
        [y0, y1] = [c - half, c + half];
      } else {
        const c = 0.5 * (x0 + x1), half = 0.5 * uy * plot.width;
        [x0, x1] = [c - half, c + half];
      }
    }
    const { sx, sy } = scales(plot, [x0, x1], [y0, y1]);
    drawAxes(ctx, plot, sx, sy, [x0, x1], [y0, y1], {
      xTicks: 10, yTicks: Math.max(3, Math.round(plot.height / 45)),
      xlabel: p.xlabel, ylabel: p.ylabel, ylabelX: 13,
    });
    clipTo(ctx, plot, () => {
      for (const layer of p.layers || []) drawBasicLayer(ctx, layer, arrays, sx, sy, plot, MARKS);
    });
    if (p.title) {
      textStyle(ctx, "11px sans-serif", "left", "top");
      ctx.fillText(p.title, plot.left + 5, plot.top + 4);
    }
    frameBox(ctx, plot);
  }

  const colWidth = (W - MARGIN.left) / 2;
  drawLegend(ctx, entries, {
    left: MARGIN.left, top: top - PANEL_GAP + 40, columns: 2, colWidth, row: LEGEND_ROW,
    labelWidth: colWidth - 34, markerStyle: MARKS,
  });
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "bayeskit-filter-canvas";
  el.classList.add("bayeskit-filter");
  el.appendChild(canvas);
  return attachPainter(model, canvas, () => paint(model, canvas));
}

export default { render };
