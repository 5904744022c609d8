// Front end of bayeskit.widgets.vae_explorer: LatentCanvas (panel "latent": a scatter of latent
// means with the decoded image beside it) and FlowCanvas (panel "flow": target and flow densities).
//
// floats(), ticks() and attachPainter() (repaint per frame, echo `painted = seq`) come from
// canvas_common.js, which widgets/_base.py prepends to this module.

// Okabe-Ito colours (bayeskit.plot) and greys only; class colours arrive from Python.
const INK = {
  axis: "#444444",
  grid: "rgba(0, 0, 0, 0.07)",
  text: "#222222",
  pointer: "#000000",
  halo: "#FFFFFF",
};
// heatmaps: white to Okabe-Ito blue (#0072B2) for densities
const HEAT = [0, 114, 178];

function setupCanvas(model, canvas) {
  const W = model.get("width");
  const H = model.get("height");
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
  ctx.fillStyle = INK.halo;
  ctx.fillRect(0, 0, W, H);
  return { ctx, W, H };
}

function axes(ctx, plot, xr, yr, xlabel, ylabel) {
  const [x0, x1] = xr;
  const [y0, y1] = yr;
  const sx = (x) => plot.left + ((x - x0) / (x1 - x0)) * plot.width;
  const sy = (y) => plot.top + ((y1 - y) / (y1 - y0)) * plot.height;
  ctx.font = "11px sans-serif";
  ctx.fillStyle = INK.text;
  ctx.strokeStyle = INK.grid;
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of ticks(x0, x1, 8)) {
    const px = sx(v);
    ctx.beginPath();
    ctx.moveTo(px, plot.top);
    ctx.lineTo(px, plot.top + plot.height);
    ctx.stroke();
    ctx.fillText(String(+v.toFixed(6)), px, plot.top + plot.height + 4);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of ticks(y0, y1, 8)) {
    const py = sy(v);
    ctx.beginPath();
    ctx.moveTo(plot.left, py);
    ctx.lineTo(plot.left + plot.width, py);
    ctx.stroke();
    ctx.fillText(String(+v.toFixed(6)), plot.left - 5, py);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText(xlabel, plot.left + plot.width / 2, plot.top + plot.height + 18);
  ctx.save();
  ctx.translate(plot.left - 34, plot.top + plot.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(ylabel, 0, 0);
  ctx.restore();
  ctx.strokeStyle = INK.axis;
  ctx.strokeRect(plot.left, plot.top, plot.width, plot.height);
  return { sx, sy };
}

/** Paint a (rows x cols) array of values in [0, 1] into the box, via an offscreen image. */
function paintImage(ctx, values, rows, cols, box, toRGB) {
  if (values.length < rows * cols || rows < 1 || cols < 1) return;
  const off = document.createElement("canvas");
  off.width = cols;
  off.height = rows;
  const octx = off.getContext("2d");
  const img = octx.createImageData(cols, rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = Math.max(0, Math.min(1, values[r * cols + c]));
      const [R, G, B] = toRGB(v);
      const k = 4 * (r * cols + c);
      img.data[k] = R;
      img.data[k + 1] = G;
      img.data[k + 2] = B;
      img.data[k + 3] = 255;
    }
  }
  octx.putImageData(img, 0, 0);
  ctx.save();
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(off, box.left, box.top, box.width, box.height);
  ctx.restore();
  ctx.strokeStyle = INK.axis;
  ctx.lineWidth = 1;
  ctx.strokeRect(box.left, box.top, box.width, box.height);
}

const inkOnPaper = (v) => {
  const g = Math.round(255 * (1 - v));
  return [g, g, g];
};
const heat = (v) => HEAT.map((c) => Math.round(255 - v * (255 - c)));

function paintLatent(model, canvas, frame) {
  const { ctx, W, H } = setupCanvas(model, canvas);
  const labels = model.get("labels") || {};
  const size = Math.min(H - 90, 330);
  const plot = { left: 52, top: 28, width: size, height: size };
  frame.plot = plot;
  const zr = model.get("z_range");
  const [xl, yl] = model.get("axis_labels");
  const { sx, sy } = axes(ctx, plot, zr, zr, xl, yl);

  ctx.font = "12px sans-serif";
  ctx.fillStyle = INK.text;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(model.get("caption") || "", plot.left, 12, W - plot.left - 8);

  // the scatter: each held-out image as its class's digit glyph, in its class colour
  const pts = floats(model.get("points"));
  const cls = floats(model.get("classes"));
  const colors = model.get("class_colors") || [];
  ctx.save();
  ctx.beginPath();
  ctx.rect(plot.left, plot.top, plot.width, plot.height);
  ctx.clip();
  ctx.font = "bold 11px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  const n = Math.min(pts.length / 2, cls.length);
  for (let i = 0; i < n; i++) {
    const k = Math.round(cls[i]);
    ctx.fillStyle = colors[k % Math.max(colors.length, 1)] || INK.text;
    ctx.fillText(String(k), sx(pts[2 * i]), sy(pts[2 * i + 1]));
  }
  // the decoded point: a crosshair ring with a white halo
  const [p1, p2] = model.get("pointer");
  const px = sx(p1);
  const py = sy(p2);
  for (const [color, width] of [[INK.halo, 5], [INK.pointer, 2]]) {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.arc(px, py, 7, 0, 2 * Math.PI);
    ctx.moveTo(px - 12, py);
    ctx.lineTo(px - 4, py);
    ctx.moveTo(px + 4, py);
    ctx.lineTo(px + 12, py);
    ctx.moveTo(px, py - 12);
    ctx.lineTo(px, py - 4);
    ctx.moveTo(px, py + 4);
    ctx.lineTo(px, py + 12);
    ctx.stroke();
  }
  ctx.restore();

  // the decoded image, right of the scatter
  const side = model.get("image_side");
  const imgSize = Math.min(220, W - plot.left - plot.width - 60);
  const box = { left: plot.left + plot.width + 40, top: plot.top + 20, width: imgSize, height: imgSize };
  frame.image = box;
  paintImage(ctx, floats(model.get("image")), side, side, box, inkOnPaper);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = INK.text;
  ctx.textAlign = "left";
  ctx.textBaseline = "bottom";
  ctx.fillText(labels.image || "", box.left, box.top - 4, imgSize + 40);
  ctx.textBaseline = "top";
  ctx.fillText(model.get("image_caption") || "", box.left, box.top + imgSize + 4, imgSize + 40);
  ctx.fillText(`${side} x ${side} pixels; black = 1`, box.left, box.top + imgSize + 18, imgSize + 40);

  // legend below: the glyph scatter, the pointer, the class colours
  const legendTop = plot.top + plot.height + 40;
  ctx.textBaseline = "middle";
  ctx.font = "bold 11px sans-serif";
  ctx.fillStyle = colors[0] || INK.text;
  ctx.fillText("0", plot.left + 4, legendTop);
  ctx.font = "11px sans-serif";
  ctx.fillStyle = INK.text;
  ctx.fillText(labels.scatter || "", plot.left + 18, legendTop, W - plot.left - 24);
  ctx.strokeStyle = INK.pointer;
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.arc(plot.left + 7, legendTop + 18, 5, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.fillText(labels.pointer || "", plot.left + 18, legendTop + 18, W - plot.left - 24);
  ctx.fillText("classes:", box.left, legendTop - 40);
  ctx.font = "bold 13px sans-serif";
  for (let k = 0; k < colors.length; k++) {
    ctx.fillStyle = colors[k];
    ctx.fillText(String(k), box.left + 56 + 15 * k, legendTop - 40);
  }
}

function paintFlow(model, canvas) {
  const { ctx, W, H } = setupCanvas(model, canvas);
  const labels = model.get("labels") || {};
  const g = model.get("grid");
  const [a0, a1, b0, b1] = model.get("bounds");
  const size = Math.min(H - 90, (W - 140) / 2);
  const target = floats(model.get("target"));
  const dens = floats(model.get("density"));
  // one colour scale for both panels, so the two densities compare directly
  let top = 0;
  for (const v of target) top = Math.max(top, v);
  for (const v of dens) top = Math.max(top, v);
  const scale = (arr) => {
    const out = new Float32Array(arr.length);
    // rows of the grid run along z2 upwards: flip so z2 grows towards the top of the picture
    for (let r = 0; r < g; r++) {
      for (let c = 0; c < g; c++) out[(g - 1 - r) * g + c] = top > 0 ? arr[r * g + c] / top : 0;
    }
    return out;
  };
  const panels = [
    { arr: target, title: labels.target },
    { arr: dens, title: model.get("flow_caption") || labels.flow },
  ];
  ctx.font = "12px sans-serif";
  ctx.fillStyle = INK.text;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(model.get("caption") || "", 52, 12);
  panels.forEach((p, i) => {
    const plot = { left: 52 + i * (size + 70), top: 40, width: size, height: size };
    if (p.arr.length >= g * g) paintImage(ctx, scale(p.arr), g, g, plot, heat);
    axes(ctx, plot, [a0, a1], [b0, b1], "z1", "z2");
    ctx.font = "11px sans-serif";
    ctx.fillStyle = INK.text;
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    ctx.fillText(p.title || "", plot.left, plot.top - 4, size + 60);
  });
  ctx.textBaseline = "top";
  ctx.fillText("colour: density (white = 0, dark blue = the larger of the two maxima)", 52, 40 + size + 38);
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  const panel = model.get("panel");
  canvas.className = `bayeskit-vae-canvas bayeskit-vae-${panel}`;
  el.classList.add("bayeskit-vae");
  el.appendChild(canvas);
  const frame = { plot: null, image: null };
  const paint = panel === "flow" ? () => paintFlow(model, canvas) : () => paintLatent(model, canvas, frame);
  const detach = attachPainter(model, canvas, paint);
  if (panel === "flow") return detach;

  canvas.title = "move the pointer over the scatter: the decoder's image at that latent point appears on the right";
  // At most one pointer message in flight: the next is sent when the kernel's update arrives
  // (seq changes) or after 250 ms, always with the newest position, so a fast mouse never
  // queues up stale decodes.
  let inflight = false;
  let pending = null;
  let timer = 0;
  const flush = () => {
    if (inflight || !pending) return;
    model.send(pending);
    pending = null;
    inflight = true;
    clearTimeout(timer);
    timer = setTimeout(() => { inflight = false; flush(); }, 250);
  };
  const onSeq = () => { inflight = false; clearTimeout(timer); flush(); };
  model.on("change:seq", onSeq);
  const toLatent = (event) => {
    const plot = frame.plot;
    if (!plot) return null;
    const rect = canvas.getBoundingClientRect();
    const px = ((event.clientX - rect.left) / rect.width) * model.get("width");
    const py = ((event.clientY - rect.top) / rect.height) * model.get("height");
    if (px < plot.left || px > plot.left + plot.width || py < plot.top || py > plot.top + plot.height) return null;
    const [z0, z1] = model.get("z_range");
    return {
      z1: z0 + ((px - plot.left) / plot.width) * (z1 - z0),
      z2: z1 - ((py - plot.top) / plot.height) * (z1 - z0),
    };
  };
  const onPointer = (event) => {
    const z = toLatent(event);
    if (!z) return;
    pending = { type: "pointer", z1: z.z1, z2: z.z2 };
    flush();
  };
  canvas.addEventListener("mousemove", onPointer);
  canvas.addEventListener("click", onPointer);
  return () => {
    canvas.removeEventListener("mousemove", onPointer);
    canvas.removeEventListener("click", onPointer);
    model.off("change:seq", onSeq);
    clearTimeout(timer);
    detach();
  };
}

export default { render };
