// Front end of bayeskit.widgets.FilterCanvas: paints stacked panels of lines, bands and markers.
//
// Python sends a JSON `spec` (panels, each a list of layers that name arrays) and a dict of
// float32 arrays as binary buffers (`arrays`, DataViews here) inside one hold_sync(), bumping
// `seq` last. floats(), ticks() and attachPainter() (repaint per frame, echo `painted = seq`)
// come from canvas_common.js, which widgets/_base.py prepends to this module.
//
// Layer kinds: "line" (x, y; NaN breaks the line), "band" (x, lower, upper), "points"
// (x, y; marker "dot" | "ring" | "cross"; NaN skipped), "ticks" (x: short vertical marks along
// the bottom of the panel). Every layer with a `label` gets a legend entry.

const AXIS = "#444444";
const GRID = "rgba(0, 0, 0, 0.07)";
const TEXT = "#222222";
const MARGIN = { left: 56, right: 14, top: 26, bottom: 8 };
const PANEL_GAP = 40; // room for the x tick labels and axis label of each panel
const LEGEND_ROW = 17;

function drawMarker(ctx, marker, x, y, color, size) {
  const r = size || 3.5;
  ctx.save();
  if (marker === "dot") {
    ctx.fillStyle = color;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
  } else if (marker === "ring") {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(x, y, r + 1, 0, 2 * Math.PI);
    ctx.stroke();
  } else {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x - r, y - r);
    ctx.lineTo(x + r, y + r);
    ctx.moveTo(x - r, y + r);
    ctx.lineTo(x + r, y - r);
    ctx.stroke();
  }
  ctx.restore();
}

function legendSwatch(ctx, layer, x, y) {
  if (layer.kind === "band") {
    ctx.fillStyle = layer.color;
    ctx.fillRect(x, y - 6, 22, 12);
  } else if (layer.kind === "line") {
    ctx.strokeStyle = layer.color;
    ctx.lineWidth = layer.width || 1.5;
    ctx.setLineDash(layer.dash || []);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 22, y);
    ctx.stroke();
    ctx.setLineDash([]);
  } else if (layer.kind === "ticks") {
    ctx.strokeStyle = layer.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (const dx of [6, 11, 16]) {
      ctx.moveTo(x + dx, y - 6);
      ctx.lineTo(x + dx, y + 6);
    }
    ctx.stroke();
  } else {
    drawMarker(ctx, layer.marker, x + 11, y, layer.color, layer.size);
  }
}

function drawLayer(ctx, layer, arrays, sx, sy, plot) {
  const get = (name) => floats(arrays[name]);
  if (layer.kind === "band") {
    const x = get(layer.x), lo = get(layer.lower), hi = get(layer.upper);
    const n = Math.min(x.length, lo.length, hi.length);
    ctx.fillStyle = layer.color;
    // one polygon per run of finite values (a NaN breaks the band)
    let i = 0;
    while (i < n) {
      while (i < n && !(isFinite(lo[i]) && isFinite(hi[i]))) i++;
      let j = i;
      while (j < n && isFinite(lo[j]) && isFinite(hi[j])) j++;
      if (j - i >= 2) {
        ctx.beginPath();
        ctx.moveTo(sx(x[i]), sy(hi[i]));
        for (let k = i + 1; k < j; k++) ctx.lineTo(sx(x[k]), sy(hi[k]));
        for (let k = j - 1; k >= i; k--) ctx.lineTo(sx(x[k]), sy(lo[k]));
        ctx.closePath();
        ctx.fill();
      }
      i = j;
    }
  } else if (layer.kind === "line") {
    const x = get(layer.x), y = get(layer.y);
    const n = Math.min(x.length, y.length);
    ctx.strokeStyle = layer.color;
    ctx.lineWidth = layer.width || 1.5;
    ctx.setLineDash(layer.dash || []);
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < n; i++) {
      if (!(isFinite(x[i]) && isFinite(y[i]))) { pen = false; continue; }
      if (pen) ctx.lineTo(sx(x[i]), sy(y[i]));
      else ctx.moveTo(sx(x[i]), sy(y[i]));
      pen = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  } else if (layer.kind === "points") {
    const x = get(layer.x), y = get(layer.y);
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) {
      if (isFinite(x[i]) && isFinite(y[i])) drawMarker(ctx, layer.marker, sx(x[i]), sy(y[i]), layer.color, layer.size);
    }
  } else if (layer.kind === "ticks") {
    const x = get(layer.x);
    ctx.strokeStyle = layer.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    const bottom = plot.top + plot.height;
    for (let i = 0; i < x.length; i++) {
      if (!isFinite(x[i])) continue;
      ctx.moveTo(sx(x[i]), bottom);
      ctx.lineTo(sx(x[i]), bottom - 9);
    }
    ctx.stroke();
  }
}

function paint(model, canvas) {
  const W = model.get("width");
  const H = model.get("height");
  const spec = model.get("spec") || {};
  const arrays = model.get("arrays") || {};
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
    canvas.width = Math.round(W * dpr);
    canvas.height = Math.round(H * dpr);
    canvas.style.width = `${W}px`;
    canvas.style.height = `${H}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, W, H);

  const panels = spec.panels || [];
  // legend: one entry per distinct label, two columns, below the last panel
  const entries = [];
  const seen = new Set();
  for (const p of panels) {
    for (const layer of p.layers || []) {
      if (layer.label && !seen.has(layer.label)) {
        seen.add(layer.label);
        entries.push(layer);
      }
    }
  }
  const legendRows = Math.ceil(entries.length / 2);
  const available = H - MARGIN.top - MARGIN.bottom - panels.length * PANEL_GAP - legendRows * LEGEND_ROW;
  const totalWeight = panels.reduce((s, p) => s + (p.weight || 1), 0) || 1;

  ctx.font = "12px sans-serif";
  ctx.fillStyle = TEXT;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(spec.caption || "", MARGIN.left, MARGIN.top / 2, W - MARGIN.left - MARGIN.right);

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
    const sx = (x) => plot.left + ((x - x0) / (x1 - x0)) * plot.width;
    const sy = (y) => plot.top + ((y1 - y) / (y1 - y0)) * plot.height;

    ctx.font = "11px sans-serif";
    ctx.fillStyle = TEXT;
    ctx.strokeStyle = GRID;
    ctx.lineWidth = 1;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const v of ticks(x0, x1, 10)) {
      const px = sx(v);
      ctx.beginPath();
      ctx.moveTo(px, plot.top);
      ctx.lineTo(px, plot.top + plot.height);
      ctx.stroke();
      ctx.fillText(String(+v.toFixed(6)), px, plot.top + plot.height + 3);
    }
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of ticks(y0, y1, Math.max(3, Math.round(plot.height / 45)))) {
      const py = sy(v);
      ctx.beginPath();
      ctx.moveTo(plot.left, py);
      ctx.lineTo(plot.left + plot.width, py);
      ctx.stroke();
      ctx.fillText(String(+v.toFixed(6)), plot.left - 5, py);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillText(p.xlabel || "", plot.left + plot.width / 2, plot.top + plot.height + 17);
    ctx.save();
    ctx.translate(13, plot.top + plot.height / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(p.ylabel || "", 0, 0);
    ctx.restore();

    ctx.save();
    ctx.beginPath();
    ctx.rect(plot.left, plot.top, plot.width, plot.height);
    ctx.clip();
    for (const layer of p.layers || []) drawLayer(ctx, layer, arrays, sx, sy, plot);
    ctx.restore();
    if (p.title) {
      ctx.font = "11px sans-serif";
      ctx.fillStyle = TEXT;
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.fillText(p.title, plot.left + 5, plot.top + 4);
    }
    ctx.strokeStyle = AXIS;
    ctx.lineWidth = 1;
    ctx.strokeRect(plot.left, plot.top, plot.width, plot.height);
  }

  ctx.font = "11px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const legendTop = top - PANEL_GAP + 40;
  const colWidth = (W - MARGIN.left) / 2;
  entries.forEach((layer, i) => {
    const x = MARGIN.left + (i % 2) * colWidth;
    const y = legendTop + Math.floor(i / 2) * LEGEND_ROW;
    legendSwatch(ctx, layer, x, y);
    ctx.fillStyle = TEXT;
    ctx.fillText(layer.label, x + 28, y, colWidth - 34);
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
