// Front end of bayeskit.widgets.bll_explorer.LastLayerCanvas: side-by-side panels of a
// Bayesian-last-layer explorer (a predictive plot and a reliability diagram).
//
// Python sends a JSON `spec` (a caption and panels, each with a pixel box [left, top, width,
// height], axis ranges and labels, and a list of layers naming arrays) and a dict of float32
// arrays as binary buffers (`arrays`) inside one hold_sync(), bumping `seq` last. floats(),
// ticks() and attachPainter() (repaint once per frame, echo `painted = seq`) come from
// canvas_common.js, which widgets/_base.py prepends to this module.
//
// Layer kinds:
//   "span"    shaded x interval [x0, x1] (numbers in the layer), with `text` written at its top;
//   "heatmap" values (ny * nx, row-major, row 0 at y_range[0]) coloured on a ramp of `stops`
//             (colours as [r, g, b] numbers) from vmin to vmax, drawn under everything else;
//   "band"    x, lower, upper (NaN breaks it);   "line" x, y (NaN breaks it; `dash`);
//   "points"  x, y (marker "dot" | "ring" | "cross");   "bars" x (centres), y (heights), `bar_width`.
// Every layer with a `label` gets a legend entry under its panel; a heatmap gets a colour bar.

const AXIS = "#444444";
const GRID = "rgba(0, 0, 0, 0.07)";
const TEXT = "#222222";
const LEGEND_ROW = 16;

function rgb(c, alpha) {
  return `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${alpha === undefined ? 1 : alpha})`;
}

function ramp(stops, t) {
  const u = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(u), stops.length - 2);
  const f = u - i;
  const a = stops[i], b = stops[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k])));
}

function marker(ctx, kind, x, y, color, size) {
  const r = size || 3.5;
  ctx.save();
  if (kind === "ring") {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(x, y, r + 1, 0, 2 * Math.PI);
    ctx.stroke();
  } else if (kind === "cross") {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x - r, y - r);
    ctx.lineTo(x + r, y + r);
    ctx.moveTo(x - r, y + r);
    ctx.lineTo(x + r, y - r);
    ctx.stroke();
  } else {
    ctx.fillStyle = color;
    ctx.strokeStyle = "white";
    ctx.lineWidth = 0.8;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }
  ctx.restore();
}

function swatch(ctx, layer, x, y) {
  ctx.save();
  if (layer.kind === "band" || layer.kind === "span" || layer.kind === "bars") {
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
  } else if (layer.kind === "points") {
    marker(ctx, layer.marker, x + 11, y, layer.color, layer.size);
  }
  ctx.restore();
}

function drawHeatmap(ctx, layer, arrays, sx, sy) {
  const v = floats(arrays[layer.values]);
  const nx = layer.nx, ny = layer.ny;
  if (v.length !== nx * ny || nx < 2 || ny < 2) return;
  const [ax0, ax1] = layer.x_extent, [ay0, ay1] = layer.y_extent;
  const px0 = sx(ax0), px1 = sx(ax1), py0 = sy(ay1), py1 = sy(ay0);
  // paint one pixel per grid cell off-screen, then scale it onto the plot (smoothed)
  const off = document.createElement("canvas");
  off.width = nx;
  off.height = ny;
  const octx = off.getContext("2d");
  const img = octx.createImageData(nx, ny);
  const span = (layer.vmax - layer.vmin) || 1;
  for (let row = 0; row < ny; row++) {
    for (let col = 0; col < nx; col++) {
      const value = v[row * nx + col];
      const c = ramp(layer.stops, (value - layer.vmin) / span);
      const k = ((ny - 1 - row) * nx + col) * 4; // row 0 is the bottom (smallest y)
      img.data[k] = c[0];
      img.data[k + 1] = c[1];
      img.data[k + 2] = c[2];
      img.data[k + 3] = isFinite(value) ? 255 : 0;
    }
  }
  octx.putImageData(img, 0, 0);
  ctx.save();
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, px0, py0, px1 - px0, py1 - py0);
  ctx.restore();
}

function drawLayer(ctx, layer, arrays, sx, sy, plot) {
  const get = (name) => floats(arrays[name]);
  if (layer.kind === "heatmap") {
    drawHeatmap(ctx, layer, arrays, sx, sy);
  } else if (layer.kind === "span") {
    const a = sx(layer.x0), b = sx(layer.x1);
    ctx.fillStyle = layer.color;
    ctx.fillRect(a, plot.top, b - a, plot.height);
    if (layer.text) {
      ctx.fillStyle = TEXT;
      ctx.font = "11px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      const left = Math.max(a, plot.left), right = Math.min(b, plot.left + plot.width);
      ctx.fillText(layer.text, (left + right) / 2, plot.top + 18, Math.max(right - left - 4, 20));
    }
  } else if (layer.kind === "band") {
    const x = get(layer.x), lo = get(layer.lower), hi = get(layer.upper);
    const n = Math.min(x.length, lo.length, hi.length);
    ctx.fillStyle = layer.color;
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
      if (isFinite(x[i]) && isFinite(y[i])) marker(ctx, layer.marker, sx(x[i]), sy(y[i]), layer.color, layer.size);
    }
  } else if (layer.kind === "bars") {
    const x = get(layer.x), y = get(layer.y);
    const half = (layer.bar_width || 0.1) / 2;
    ctx.fillStyle = layer.color;
    ctx.strokeStyle = AXIS;
    ctx.lineWidth = 0.6;
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      if (!(isFinite(x[i]) && isFinite(y[i]))) continue;
      const a = sx(x[i] - half), b = sx(x[i] + half), top = sy(y[i]), base = sy(0);
      ctx.fillRect(a, top, b - a, base - top);
      ctx.strokeRect(a, top, b - a, base - top);
    }
  }
}

function drawAxes(ctx, p, plot, sx, sy, x0, x1, y0, y1) {
  ctx.font = "11px sans-serif";
  ctx.fillStyle = TEXT;
  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of ticks(x0, x1, Math.max(3, Math.round(plot.width / 70)))) {
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
  ctx.translate(plot.left - 40, plot.top + plot.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(p.ylabel || "", 0, 0);
  ctx.restore();
}

function drawColorbar(ctx, layer, plot) {
  const x = plot.left + plot.width + 8, w = 12, top = plot.top, h = plot.height;
  for (let i = 0; i < h; i++) {
    ctx.fillStyle = rgb(ramp(layer.stops, 1 - i / (h - 1)));
    ctx.fillRect(x, top + i, w, 1);
  }
  ctx.strokeStyle = AXIS;
  ctx.strokeRect(x, top, w, h);
  ctx.fillStyle = TEXT;
  ctx.font = "10px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(String(+layer.vmax.toFixed(2)), x + w + 3, top + 4);
  ctx.fillText(String(+layer.vmin.toFixed(2)), x + w + 3, top + h - 4);
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
  const [x0, x1] = p.x_range || [0, 1];
  const [y0, y1] = p.y_range || [0, 1];
  const sx = (x) => plot.left + ((x - x0) / (x1 - x0)) * plot.width;
  const sy = (y) => plot.top + ((y1 - y) / (y1 - y0)) * plot.height;
  drawAxes(ctx, p, plot, sx, sy, x0, x1, y0, y1);
  ctx.save();
  ctx.beginPath();
  ctx.rect(plot.left, plot.top, plot.width, plot.height);
  ctx.clip();
  const layers = p.layers || [];
  // heat maps first, shaded spans next, then everything else in the given order
  const order = (l) => (l.kind === "heatmap" ? 0 : l.kind === "span" ? 1 : 2);
  for (const layer of [...layers].sort((a, b) => order(a) - order(b))) drawLayer(ctx, layer, arrays, sx, sy, plot);
  ctx.restore();
  ctx.strokeStyle = AXIS;
  ctx.lineWidth = 1;
  ctx.strokeRect(plot.left, plot.top, plot.width, plot.height);
  if (p.title) {
    ctx.font = "bold 11px sans-serif";
    ctx.fillStyle = TEXT;
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(p.title, plot.left, plot.top - 3, plot.width);
  }
  for (const layer of layers) if (layer.kind === "heatmap") drawColorbar(ctx, layer, plot);
  // legend: one row per labelled layer, under the panel
  ctx.font = "11px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  let y = plot.top + plot.height + 40;
  const seen = new Set();
  for (const layer of layers) {
    if (!layer.label || layer.kind === "heatmap" || seen.has(layer.label)) continue;
    seen.add(layer.label);
    swatch(ctx, layer, plot.left, y);
    ctx.fillStyle = TEXT;
    ctx.fillText(layer.label, plot.left + 28, y, plot.width - 28);
    y += LEGEND_ROW;
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
  ctx.font = "12px sans-serif";
  ctx.fillStyle = TEXT;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(spec.caption || "", 10, 12, W - 20);
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
