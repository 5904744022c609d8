// Front end of bayeskit.widgets.BOCanvas: paints a Bayesian-optimisation step on a <canvas>.
//
// Python sends a JSON `spec` (panels placed by fractions of the drawing area, each a list of
// layers that name arrays) and a dict of float32 arrays as binary buffers (`arrays`) inside one
// hold_sync(), bumping `seq` last. floats(), ticks() and attachPainter() (repaint per frame,
// echo `painted = seq`) come from canvas_common.js, which widgets/_base.py prepends.
//
// Layer kinds: "line" (x, y; optional dash; NaN breaks it), "band" (x, lower, upper),
// "points" (x, y; marker "dot" | "star" | "plus"), "vline" (x: a vertical line at each value),
// "shade" (x0, x1: a grey span), "heat" (z: an ny x nx image, row j = y_j, column i = x_i,
// drawn with the viridis colour map over vmin..vmax, with a labelled colour bar).
// Every layer with a `label` gets one legend entry (labels are de-duplicated).

const AXIS = "#444444";
const GRID = "rgba(0, 0, 0, 0.07)";
const TEXT = "#222222";
const OUTER = { left: 8, right: 8, top: 24, bottom: 6 };
const LEGEND_ROW = 17;
// viridis (colour-blind safe, monotone in lightness), 9 stops
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];

function viridis(t) {
  if (!isFinite(t)) return [200, 200, 200];
  const u = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(u));
  const f = u - i;
  const a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k])));
}

function drawMarker(ctx, marker, x, y, color, size) {
  const r = size || 4;
  ctx.save();
  if (marker === "star") {
    ctx.fillStyle = color;
    ctx.strokeStyle = "black";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let k = 0; k < 10; k++) {
      const rad = k % 2 === 0 ? r * 1.9 : r * 0.8;
      const ang = -Math.PI / 2 + (k * Math.PI) / 5;
      const px = x + rad * Math.cos(ang), py = y + rad * Math.sin(ang);
      if (k === 0) ctx.moveTo(px, py);
      else ctx.lineTo(px, py);
    }
    ctx.closePath();
    ctx.fill();
    ctx.stroke();
  } else if (marker === "plus") {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.moveTo(x - r - 2, y);
    ctx.lineTo(x + r + 2, y);
    ctx.moveTo(x, y - r - 2);
    ctx.lineTo(x, y + r + 2);
    ctx.stroke();
  } else {
    ctx.fillStyle = color;
    ctx.strokeStyle = "white";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }
  ctx.restore();
}

function legendSwatch(ctx, layer, x, y) {
  ctx.save();
  if (layer.kind === "band" || layer.kind === "shade") {
    ctx.fillStyle = layer.color;
    ctx.fillRect(x, y - 6, 22, 12);
  } else if (layer.kind === "line" || layer.kind === "vline") {
    ctx.strokeStyle = layer.color;
    ctx.lineWidth = layer.width || 1.5;
    ctx.setLineDash(layer.dash || []);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 22, y);
    ctx.stroke();
  } else if (layer.kind === "points") {
    drawMarker(ctx, layer.marker, x + 11, y, layer.color, layer.size);
  }
  ctx.restore();
}

function drawHeat(ctx, layer, arrays, plot, cache) {
  const z = floats(arrays[layer.z]);
  const nx = layer.nx, ny = layer.ny;
  if (z.length < nx * ny || nx < 1 || ny < 1) return;
  const vmin = layer.vmin, vmax = layer.vmax;
  const span = vmax > vmin ? vmax - vmin : 1;
  if (!cache.heat || cache.heat.width !== nx || cache.heat.height !== ny) {
    cache.heat = document.createElement("canvas");
    cache.heat.width = nx;
    cache.heat.height = ny;
  }
  const hctx = cache.heat.getContext("2d");
  const image = hctx.createImageData(nx, ny);
  for (let j = 0; j < ny; j++) {
    // image row 0 is the top of the plot: the largest y
    const row = ny - 1 - j;
    for (let i = 0; i < nx; i++) {
      const [r, g, b] = viridis((z[j * nx + i] - vmin) / span);
      const o = 4 * (row * nx + i);
      image.data[o] = r;
      image.data[o + 1] = g;
      image.data[o + 2] = b;
      image.data[o + 3] = 255;
    }
  }
  hctx.putImageData(image, 0, 0);
  ctx.save();
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(cache.heat, plot.left, plot.top, plot.width, plot.height);
  ctx.restore();
}

function drawColorbar(ctx, layer, plot) {
  const x = plot.left + plot.width + 12, w = 12;
  const steps = 64;
  for (let k = 0; k < steps; k++) {
    const [r, g, b] = viridis(1 - k / (steps - 1));
    ctx.fillStyle = `rgb(${r}, ${g}, ${b})`;
    ctx.fillRect(x, plot.top + (k * plot.height) / steps, w, plot.height / steps + 1);
  }
  ctx.strokeStyle = AXIS;
  ctx.strokeRect(x, plot.top, w, plot.height);
  ctx.fillStyle = TEXT;
  ctx.font = "10px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const vmin = layer.vmin, vmax = layer.vmax;
  for (const v of ticks(vmin, vmax, 5)) {
    const py = plot.top + ((vmax - v) / (vmax - vmin || 1)) * plot.height;
    ctx.fillText(String(+v.toPrecision(4)), x + w + 3, py);
  }
  ctx.save();
  ctx.translate(x + w + 58, plot.top + plot.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.font = "11px sans-serif";
  ctx.fillText(layer.colorbar || "", 0, 0);
  ctx.restore();
}

function drawLayer(ctx, layer, arrays, sx, sy, plot, cache) {
  const get = (name) => floats(arrays[name]);
  if (layer.kind === "heat") {
    drawHeat(ctx, layer, arrays, plot, cache);
  } else if (layer.kind === "shade") {
    ctx.fillStyle = layer.color;
    const a = sx(layer.x0), b = sx(layer.x1);
    ctx.fillRect(Math.min(a, b), plot.top, Math.abs(b - a), plot.height);
  } else if (layer.kind === "band") {
    const x = get(layer.x), lo = get(layer.lower), hi = get(layer.upper);
    const n = Math.min(x.length, lo.length, hi.length);
    if (n < 2) return;
    ctx.fillStyle = layer.color;
    ctx.beginPath();
    ctx.moveTo(sx(x[0]), sy(hi[0]));
    for (let k = 1; k < n; k++) ctx.lineTo(sx(x[k]), sy(hi[k]));
    for (let k = n - 1; k >= 0; k--) ctx.lineTo(sx(x[k]), sy(lo[k]));
    ctx.closePath();
    ctx.fill();
  } else if (layer.kind === "line") {
    const x = get(layer.x), y = get(layer.y);
    const n = Math.min(x.length, y.length);
    ctx.strokeStyle = layer.color;
    ctx.lineWidth = layer.width || 1.5;
    ctx.setLineDash(layer.dash || []);
    ctx.beginPath();
    let pen = false;
    for (let k = 0; k < n; k++) {
      if (!(isFinite(x[k]) && isFinite(y[k]))) { pen = false; continue; }
      if (pen) ctx.lineTo(sx(x[k]), sy(y[k]));
      else ctx.moveTo(sx(x[k]), sy(y[k]));
      pen = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  } else if (layer.kind === "vline") {
    const x = get(layer.x);
    ctx.strokeStyle = layer.color;
    ctx.lineWidth = layer.width || 1.5;
    ctx.setLineDash(layer.dash || []);
    ctx.beginPath();
    for (let k = 0; k < x.length; k++) {
      if (!isFinite(x[k])) continue;
      ctx.moveTo(sx(x[k]), plot.top);
      ctx.lineTo(sx(x[k]), plot.top + plot.height);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  } else if (layer.kind === "points") {
    const x = get(layer.x), y = get(layer.y);
    const n = Math.min(x.length, y.length);
    for (let k = 0; k < n; k++) {
      if (isFinite(x[k]) && isFinite(y[k])) drawMarker(ctx, layer.marker, sx(x[k]), sy(y[k]), layer.color, layer.size);
    }
  }
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
  const [x0, x1] = p.x_range || [0, 1];
  const [y0, y1] = p.y_range || [0, 1];
  const sx = (x) => plot.left + ((x - x0) / (x1 - x0 || 1)) * plot.width;
  const sy = (y) => plot.top + ((y1 - y) / (y1 - y0 || 1)) * plot.height;

  ctx.font = "11px sans-serif";
  ctx.fillStyle = TEXT;
  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of ticks(x0, x1, Math.max(3, Math.round(plot.width / 60)))) {
    const px = sx(v);
    ctx.beginPath();
    ctx.moveTo(px, plot.top);
    ctx.lineTo(px, plot.top + plot.height);
    ctx.stroke();
    ctx.fillText(String(+v.toFixed(6)), px, plot.top + plot.height + 3);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of ticks(y0, y1, Math.max(3, Math.round(plot.height / 40)))) {
    const py = sy(v);
    ctx.beginPath();
    ctx.moveTo(plot.left, py);
    ctx.lineTo(plot.left + plot.width, py);
    ctx.stroke();
    ctx.fillText(String(+v.toPrecision(4)), plot.left - 4, py);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText(p.xlabel || "", plot.left + plot.width / 2, plot.top + plot.height + 17);
  ctx.save();
  ctx.translate(plot.left - margin.left + 10, plot.top + plot.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(p.ylabel || "", 0, 0);
  ctx.restore();

  ctx.save();
  ctx.beginPath();
  ctx.rect(plot.left, plot.top, plot.width, plot.height);
  ctx.clip();
  for (const layer of p.layers || []) drawLayer(ctx, layer, arrays, sx, sy, plot, cache);
  ctx.restore();
  for (const layer of p.layers || []) if (layer.kind === "heat" && layer.colorbar !== undefined) drawColorbar(ctx, layer, plot);
  if (p.title) {
    ctx.font = "bold 11px sans-serif";
    ctx.fillStyle = TEXT;
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(p.title, plot.left, plot.top - 3, plot.width + margin.right);
  }
  ctx.strokeStyle = AXIS;
  ctx.lineWidth = 1;
  ctx.strokeRect(plot.left, plot.top, plot.width, plot.height);
}

function paint(model, canvas, cache) {
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
  const columns = spec.legend_columns || 3;
  const legendRows = Math.ceil(entries.length / columns);
  const area = {
    left: OUTER.left,
    top: OUTER.top,
    width: W - OUTER.left - OUTER.right,
    height: H - OUTER.top - OUTER.bottom - legendRows * LEGEND_ROW - 4,
  };
  ctx.font = "12px sans-serif";
  ctx.fillStyle = TEXT;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(spec.caption || "", OUTER.left + 4, OUTER.top / 2, W - OUTER.left - OUTER.right);
  for (const p of panels) paintPanel(ctx, p, arrays, area, cache);

  ctx.font = "11px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const legendTop = area.top + area.height + 4 + LEGEND_ROW / 2;
  const colWidth = (W - OUTER.left - 40) / columns;
  entries.forEach((layer, i) => {
    const x = OUTER.left + 40 + (i % columns) * colWidth;
    const y = legendTop + Math.floor(i / columns) * LEGEND_ROW;
    legendSwatch(ctx, layer, x, y);
    ctx.fillStyle = TEXT;
    ctx.fillText(layer.label, x + 28, y, colWidth - 34);
  });
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "bayeskit-bo-canvas";
  el.classList.add("bayeskit-bo");
  el.appendChild(canvas);
  const cache = { heat: null };
  return attachPainter(model, canvas, () => paint(model, canvas, cache));
}

export default { render };
