// Front end of bayeskit.widgets.vae_explorer: LatentCanvas (panel "latent": a scatter of latent
// means with the decoded image beside it) and FlowCanvas (panel "flow": target and flow densities).
//
// floats(), attachPainter() (repaint per frame, echo `painted = seq`) and the drawing helpers
// (setupCanvas, drawAxes, drawImageGrid, clipTo, ...) come from canvas_common.js, which
// widgets/_base.py prepends to this module.

// Okabe-Ito colours (bayeskit.plot) and greys only (INK, the shared greys, is in
// canvas_common.js); class colours arrive from Python.
const POINTER = "#000000";
const HALO = "#FFFFFF";
// heatmaps: white to Okabe-Ito blue (#0072B2) for densities
const HEAT = [0, 114, 178];

/** Axes with grid and about 8 ticks per side, framed; returns the data -> pixel maps. */
function axes(ctx, plot, xr, yr, xlabel, ylabel) {
  const { sx, sy } = scales(plot, xr, yr);
  drawAxes(ctx, plot, sx, sy, xr, yr, {
    xTicks: 8, yTicks: 8, xGap: 4, xlabel, ylabel, xlabelGap: 18, ylabelX: plot.left - 34,
  });
  frameBox(ctx, plot);
  return { sx, sy };
}

/** Paint a (rows x cols) array of values in [0, 1] into the box (unsmoothed pixels), framed. */
function paintImage(ctx, values, rows, cols, box, toRGB) {
  if (values.length < rows * cols || rows < 1 || cols < 1) return;
  drawImageGrid(ctx, values, rows, cols, box, (v) => toRGB(Math.max(0, Math.min(1, v))));
  frameBox(ctx, box);
}

const inkOnPaper = (v) => {
  const g = Math.round(255 * (1 - v));
  return [g, g, g];
};
const heat = (v) => HEAT.map((c) => Math.round(255 - v * (255 - c)));

function paintLatent(model, canvas, frame) {
  const { ctx, W, H } = setupCanvas(model, canvas, HALO);
  const labels = model.get("labels") || {};
  const size = Math.min(H - 90, 330);
  const plot = { left: 52, top: 28, width: size, height: size };
  frame.plot = plot;
  const zr = model.get("z_range");
  const [xl, yl] = model.get("axis_labels");
  const { sx, sy } = axes(ctx, plot, zr, zr, xl, yl);

  drawCaption(ctx, model.get("caption"), plot.left, 12, W - plot.left - 8);

  // the scatter: each held-out image as its class's digit glyph, in its class colour
  const pts = floats(model.get("points"));
  const cls = floats(model.get("classes"));
  const colors = model.get("class_colors") || [];
  clipTo(ctx, plot, () => {
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
    for (const [color, width] of [[HALO, 5], [POINTER, 2]]) {
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
  });

  // the decoded image, right of the scatter
  const side = model.get("image_side");
  const imgSize = Math.min(220, W - plot.left - plot.width - 60);
  const box = { left: plot.left + plot.width + 40, top: plot.top + 20, width: imgSize, height: imgSize };
  frame.image = box;
  paintImage(ctx, floats(model.get("image")), side, side, box, inkOnPaper);
  textStyle(ctx, "11px sans-serif", "left", "bottom");
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
  ctx.strokeStyle = POINTER;
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
  const { ctx, W, H } = setupCanvas(model, canvas, HALO);
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
  drawCaption(ctx, model.get("caption"), 52, 12);
  panels.forEach((p, i) => {
    const plot = { left: 52 + i * (size + 70), top: 40, width: size, height: size };
    if (p.arr.length >= g * g) paintImage(ctx, scale(p.arr), g, g, plot, heat);
    axes(ctx, plot, [a0, a1], [b0, b1], "z1", "z2");
    textStyle(ctx, "11px sans-serif", "left", "bottom");
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
