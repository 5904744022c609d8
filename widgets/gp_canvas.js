// Front end of bayeskit.widgets.GPCanvas: paints a GP posterior on a <canvas>.
//
// floats(), ticks() and attachPainter() (repaint per frame, echo `painted = seq`) come from
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

function legendEntries(model, hasSamples, hasPresets, hasAdded) {
  const labels = model.get("labels") || {};
  const entries = [
    { kind: "band", color: COLORS.bandY, label: labels.band_y },
    { kind: "band", color: COLORS.bandF, label: labels.band_f },
    { kind: "line", color: COLORS.mean, label: labels.mean, width: 2.5 },
  ];
  if (hasSamples) entries.push({ kind: "line", color: COLORS.samples[0], label: labels.samples, width: 1 });
  if (hasPresets) entries.push({ kind: "dot", color: COLORS.presets, label: labels.presets });
  if (hasAdded) entries.push({ kind: "cross", color: COLORS.added, label: labels.added });
  return entries.filter((e) => e.label);
}

function drawMarker(ctx, kind, x, y, color) {
  ctx.save();
  if (kind === "dot") {
    ctx.fillStyle = color;
    ctx.strokeStyle = "white";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.arc(x, y, 4, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  } else {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.moveTo(x - 5, y - 5);
    ctx.lineTo(x + 5, y + 5);
    ctx.moveTo(x - 5, y + 5);
    ctx.lineTo(x + 5, y - 5);
    ctx.stroke();
  }
  ctx.restore();
}

function paint(model, canvas, frame) {
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
  ctx.fillStyle = "white";
  ctx.fillRect(0, 0, W, H);

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
  const [x0, x1] = model.get("x_range");
  const [y0, y1] = model.get("y_range");

  const entries = legendEntries(model, nSamples > 0, xp.length > 0, xa.length > 0);
  const legendRows = Math.ceil(entries.length / 2);
  const plot = {
    left: MARGIN.left,
    top: MARGIN.top,
    width: W - MARGIN.left - MARGIN.right,
    height: H - MARGIN.top - MARGIN.bottom - legendRows * LEGEND_ROW - 6,
  };
  frame.plot = plot; // for click -> data coordinates
  const sx = (x) => plot.left + ((x - x0) / (x1 - x0)) * plot.width;
  const sy = (y) => plot.top + ((y1 - y) / (y1 - y0)) * plot.height;

  // grid, ticks and axis labels
  ctx.font = "11px sans-serif";
  ctx.fillStyle = COLORS.text;
  ctx.strokeStyle = COLORS.grid;
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of ticks(x0, x1, 10)) {
    const px = sx(v);
    ctx.beginPath();
    ctx.moveTo(px, plot.top);
    ctx.lineTo(px, plot.top + plot.height);
    ctx.stroke();
    ctx.fillText(String(+v.toFixed(6)), px, plot.top + plot.height + 4);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of ticks(y0, y1, 6)) {
    const py = sy(v);
    ctx.beginPath();
    ctx.moveTo(plot.left, py);
    ctx.lineTo(plot.left + plot.width, py);
    ctx.stroke();
    ctx.fillText(String(+v.toFixed(6)), plot.left - 5, py);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText("x", plot.left + plot.width / 2, plot.top + plot.height + 18);
  ctx.save();
  ctx.translate(12, plot.top + plot.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText("f(x), y", 0, 0);
  ctx.restore();

  // caption: kernel and log marginal likelihood
  ctx.font = "12px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(model.get("caption") || "", plot.left, MARGIN.top / 2);

  // everything data-dependent is clipped to the plot area
  ctx.save();
  ctx.beginPath();
  ctx.rect(plot.left, plot.top, plot.width, plot.height);
  ctx.clip();
  const band = (lower, upper, color) => {
    const n = Math.min(xg.length, lower.length, upper.length);
    if (n < 2) return;
    ctx.fillStyle = color;
    ctx.beginPath();
    ctx.moveTo(sx(xg[0]), sy(upper[0]));
    for (let i = 1; i < n; i++) ctx.lineTo(sx(xg[i]), sy(upper[i]));
    for (let i = n - 1; i >= 0; i--) ctx.lineTo(sx(xg[i]), sy(lower[i]));
    ctx.closePath();
    ctx.fill();
  };
  const line = (ys, offset, color, width) => {
    const n = Math.min(xg.length, ys.length - offset);
    if (n < 2) return;
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.moveTo(sx(xg[0]), sy(ys[offset]));
    for (let i = 1; i < n; i++) ctx.lineTo(sx(xg[i]), sy(ys[offset + i]));
    ctx.stroke();
  };
  band(lowerY, upperY, COLORS.bandY);
  band(lowerF, upperF, COLORS.bandF);
  for (let s = 0; s < nSamples; s++) {
    line(samples, s * xg.length, COLORS.samples[s % COLORS.samples.length], 1);
  }
  line(mean, 0, COLORS.mean, 2.5);
  for (let i = 0; i < Math.min(xp.length, yp.length); i++) drawMarker(ctx, "dot", sx(xp[i]), sy(yp[i]), COLORS.presets);
  for (let i = 0; i < Math.min(xa.length, ya.length); i++) drawMarker(ctx, "cross", sx(xa[i]), sy(ya[i]), COLORS.added);
  ctx.restore();

  // axes box
  ctx.strokeStyle = COLORS.axis;
  ctx.lineWidth = 1;
  ctx.strokeRect(plot.left, plot.top, plot.width, plot.height);

  // legend below the plot, two columns, so it never hides data
  ctx.font = "11px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const legendTop = plot.top + plot.height + 34;
  const colWidth = (W - MARGIN.left) / 2;
  entries.forEach((e, i) => {
    const x = MARGIN.left + (i % 2) * colWidth;
    const y = legendTop + Math.floor(i / 2) * LEGEND_ROW;
    if (e.kind === "band") {
      ctx.fillStyle = e.color;
      ctx.fillRect(x, y - 6, 22, 12);
    } else if (e.kind === "line") {
      ctx.strokeStyle = e.color;
      ctx.lineWidth = e.width;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + 22, y);
      ctx.stroke();
    } else {
      drawMarker(ctx, e.kind, x + 11, y, e.color);
    }
    ctx.fillStyle = COLORS.text;
    ctx.fillText(e.label, x + 28, y, colWidth - 34);
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
