// Shared by every bayeskit canvas (prepended to each widget's own module by widgets/_base.py).
//
// Python sends float32 arrays as binary traits inside one hold_sync() and bumps `seq` last; a
// canvas repaints once per animation frame and then echoes `painted = seq`, so the kernel
// (tests, benchmarks) can tell the picture has caught up with the state.

/** A Float32Array copy of a bytes value (DataView / ArrayBuffer / typed array / empty). */
function floats(value) {
  if (!value) return new Float32Array(0);
  if (value instanceof ArrayBuffer) return new Float32Array(value.slice(0));
  if (ArrayBuffer.isView(value)) {
    // copy: the view's byteOffset need not be a multiple of 4
    const start = value.byteOffset;
    return new Float32Array(value.buffer.slice(start, start + value.byteLength));
  }
  return new Float32Array(0);
}

/** About `count` round tick values covering [lo, hi]. */
function ticks(lo, hi, count) {
  const raw = (hi - lo) / Math.max(count, 1);
  if (!(raw > 0) || !isFinite(raw)) return [];
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) {
    out.push(Math.abs(v) < 1e-12 * step ? 0 : v);
  }
  return out;
}

/**
 * Repaint `canvas` with `paint()` once per animation frame after `seq`, `width` or `height`
 * change, then echo the painted update to the page (data-seq) and the kernel (`painted`).
 * Paints once now; returns a function that stops listening.
 */
function attachPainter(model, canvas, paint) {
  let pending = 0;
  const redraw = () => {
    pending = 0;
    const seq = model.get("seq");
    paint();
    canvas.dataset.seq = String(seq);
    canvas.dataset.paintedAt = String(performance.now());
    if (model.get("painted") !== seq) {
      model.set("painted", seq);
      model.save_changes();
    }
  };
  const schedule = () => {
    if (!pending) pending = requestAnimationFrame(redraw);
  };
  // Python bumps `seq` last inside hold_sync(): by then every array of the update is set.
  const events = ["change:seq", "change:width", "change:height"];
  events.forEach((e) => model.on(e, schedule));
  redraw();
  return () => {
    events.forEach((e) => model.off(e, schedule));
    if (pending) cancelAnimationFrame(pending);
  };
}

// ---------------------------------------------------------------------------------------------
// Drawing primitives shared by the canvases. Coordinates are CSS pixels; a `plot` / `box` is
// { left, top, width, height }. Each canvas keeps its own layout and passes what differs.

// Greys for ink (the palette test allows Okabe-Ito colours and greys only).
const INK = { axis: "#444444", grid: "rgba(0, 0, 0, 0.07)", text: "#222222" };

/** A tick label: `v` rounded to `digits` decimals, without trailing zeros. */
function fmtFixed(v, digits = 6) {
  return String(+v.toFixed(digits));
}

/** A tick label: `v` to `digits` significant digits, without trailing zeros. */
function fmtPrecision(v, digits = 4) {
  return String(+v.toPrecision(digits));
}

/**
 * Size `canvas` for the model's width x height CSS pixels at the device pixel ratio (sharp on
 * high-DPI screens), scale the context so drawing is in CSS pixels, and fill it with
 * `background`. Returns { ctx, W, H }.
 */
function setupCanvas(model, canvas, background = "white") {
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
  ctx.fillStyle = background;
  ctx.fillRect(0, 0, W, H);
  return { ctx, W, H };
}

/**
 * Data -> pixel maps for `plot` showing x in [x0, x1] and y in [y0, y1] (y grows upwards).
 * `guard`: a zero-width range divides by 1 instead of 0 (the map stays finite).
 */
function scales(plot, [x0, x1], [y0, y1], guard = false) {
  const dx = guard ? x1 - x0 || 1 : x1 - x0;
  const dy = guard ? y1 - y0 || 1 : y1 - y0;
  return {
    sx: (x) => plot.left + ((x - x0) / dx) * plot.width,
    sy: (y) => plot.top + ((y1 - y) / dy) * plot.height,
  };
}

/** Set the text state in one call: fill colour, font, alignment and baseline. */
function textStyle(ctx, font, align = "left", baseline = "middle", color = INK.text) {
  ctx.font = font;
  ctx.fillStyle = color;
  ctx.textAlign = align;
  ctx.textBaseline = baseline;
}

/** A one-line caption (12px, left-aligned, vertically centred on y). */
function drawCaption(ctx, text, x, y, maxWidth) {
  textStyle(ctx, "12px sans-serif");
  ctx.fillText(text || "", x, y, maxWidth);
}

/**
 * Grid lines, tick labels and axis labels of `plot` (the frame is frameBox()). Options:
 * xTicks / yTicks (about how many ticks), xGap / yGap (pixels between axis and tick label),
 * xFormat / yFormat (tick label of a value), xlabel, ylabel, xlabelGap (pixels below the axis),
 * ylabelX (x of the rotated y label's centre).
 */
function drawAxes(ctx, plot, sx, sy, [x0, x1], [y0, y1], o) {
  const xFormat = o.xFormat || fmtFixed, yFormat = o.yFormat || fmtFixed;
  const bottom = plot.top + plot.height;
  textStyle(ctx, "11px sans-serif", "center", "top");
  ctx.strokeStyle = INK.grid;
  ctx.lineWidth = 1;
  for (const v of ticks(x0, x1, o.xTicks)) {
    const px = sx(v);
    ctx.beginPath();
    ctx.moveTo(px, plot.top);
    ctx.lineTo(px, bottom);
    ctx.stroke();
    ctx.fillText(xFormat(v), px, bottom + (o.xGap ?? 3));
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of ticks(y0, y1, o.yTicks)) {
    const py = sy(v);
    ctx.beginPath();
    ctx.moveTo(plot.left, py);
    ctx.lineTo(plot.left + plot.width, py);
    ctx.stroke();
    ctx.fillText(yFormat(v), plot.left - (o.yGap ?? 5), py);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText(o.xlabel || "", plot.left + plot.width / 2, bottom + (o.xlabelGap ?? 17));
  ctx.save();
  ctx.translate(o.ylabelX, plot.top + plot.height / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(o.ylabel || "", 0, 0);
  ctx.restore();
}

/** The axes box around `plot`. */
function frameBox(ctx, plot) {
  ctx.strokeStyle = INK.axis;
  ctx.lineWidth = 1;
  ctx.strokeRect(plot.left, plot.top, plot.width, plot.height);
}

/** Run draw() with everything clipped to `plot`, so data never spills over the axes. */
function clipTo(ctx, plot, draw) {
  ctx.save();
  ctx.beginPath();
  ctx.rect(plot.left, plot.top, plot.width, plot.height);
  ctx.clip();
  draw();
  ctx.restore();
}

/**
 * A point marker of radius `r` centred at (x, y). Kinds: "dot" (filled; a white rim of width
 * style.outline unless 0), "ring", "cross" (line width style.crossWidth, default 2), "plus",
 * "star" (filled, black rim).
 */
function drawMarker(ctx, kind, x, y, color, r, style = {}) {
  ctx.save();
  if (kind === "ring") {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(x, y, r + 1, 0, 2 * Math.PI);
    ctx.stroke();
  } else if (kind === "cross") {
    ctx.strokeStyle = color;
    ctx.lineWidth = style.crossWidth || 2;
    ctx.beginPath();
    ctx.moveTo(x - r, y - r);
    ctx.lineTo(x + r, y + r);
    ctx.moveTo(x - r, y + r);
    ctx.lineTo(x + r, y - r);
    ctx.stroke();
  } else if (kind === "plus") {
    ctx.strokeStyle = color;
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.moveTo(x - r - 2, y);
    ctx.lineTo(x + r + 2, y);
    ctx.moveTo(x, y - r - 2);
    ctx.lineTo(x, y + r + 2);
    ctx.stroke();
  } else if (kind === "star") {
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
  } else {
    ctx.fillStyle = color;
    ctx.beginPath();
    ctx.arc(x, y, r, 0, 2 * Math.PI);
    ctx.fill();
    if (style.outline) {
      ctx.strokeStyle = "white";
      ctx.lineWidth = style.outline;
      ctx.stroke();
    }
  }
  ctx.restore();
}

/** A marker for a "points" layer: its marker kind and size (else the canvas's radius style.r). */
function layerMarker(ctx, layer, x, y, style) {
  drawMarker(ctx, layer.marker, x, y, layer.color, layer.size || style.r, style);
}

/** Filled band between lower and upper over xs; a non-finite value breaks it into pieces. */
function drawBand(ctx, xs, lower, upper, sx, sy, color) {
  const n = Math.min(xs.length, lower.length, upper.length);
  const ok = (i) => isFinite(lower[i]) && isFinite(upper[i]);
  ctx.fillStyle = color;
  let i = 0;
  while (i < n) {
    while (i < n && !ok(i)) i++;
    let j = i;
    while (j < n && ok(j)) j++;
    if (j - i >= 2) {
      ctx.beginPath();
      ctx.moveTo(sx(xs[i]), sy(upper[i]));
      for (let k = i + 1; k < j; k++) ctx.lineTo(sx(xs[k]), sy(upper[k]));
      for (let k = j - 1; k >= i; k--) ctx.lineTo(sx(xs[k]), sy(lower[k]));
      ctx.closePath();
      ctx.fill();
    }
    i = j;
  }
}

/** Polyline through (xs[i], ys[i]); a non-finite point lifts the pen. `dash`: optional pattern. */
function drawPolyline(ctx, xs, ys, sx, sy, color, width, dash) {
  const n = Math.min(xs.length, ys.length);
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.setLineDash(dash || []);
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < n; i++) {
    if (!(isFinite(xs[i]) && isFinite(ys[i]))) { pen = false; continue; }
    if (pen) ctx.lineTo(sx(xs[i]), sy(ys[i]));
    else ctx.moveTo(sx(xs[i]), sy(ys[i]));
    pen = true;
  }
  ctx.stroke();
  ctx.setLineDash([]);
}

/** Call mark(px, py) at every finite point (xs[i], ys[i]). */
function eachPoint(xs, ys, sx, sy, mark) {
  const n = Math.min(xs.length, ys.length);
  for (let i = 0; i < n; i++) if (isFinite(xs[i]) && isFinite(ys[i])) mark(sx(xs[i]), sy(ys[i]));
}

/** Vertical segments from y0 to y1 (pixels) at every finite xs[i]. */
function drawVerticals(ctx, xs, sx, y0, y1, color, width, dash) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.setLineDash(dash || []);
  ctx.beginPath();
  for (let i = 0; i < xs.length; i++) {
    if (!isFinite(xs[i])) continue;
    ctx.moveTo(sx(xs[i]), y0);
    ctx.lineTo(sx(xs[i]), y1);
  }
  ctx.stroke();
  ctx.setLineDash([]);
}

/**
 * The layer kinds several canvases share, drawn in `plot` from the named float32 `arrays`:
 * "band" (x, lower, upper), "line" (x, y; width, dash), "points" (x, y; marker, size),
 * "vline" (x: full-height lines), "ticks" (x: 9 px marks along the bottom), "shade" / "span"
 * (a grey x interval x0..x1). Returns false for a kind it does not know.
 */
function drawBasicLayer(ctx, layer, arrays, sx, sy, plot, markerStyle) {
  const get = (name) => floats(arrays[name]);
  const bottom = plot.top + plot.height;
  if (layer.kind === "band") {
    drawBand(ctx, get(layer.x), get(layer.lower), get(layer.upper), sx, sy, layer.color);
  } else if (layer.kind === "line") {
    drawPolyline(ctx, get(layer.x), get(layer.y), sx, sy, layer.color, layer.width || 1.5, layer.dash);
  } else if (layer.kind === "points") {
    eachPoint(get(layer.x), get(layer.y), sx, sy, (px, py) => layerMarker(ctx, layer, px, py, markerStyle));
  } else if (layer.kind === "vline") {
    drawVerticals(ctx, get(layer.x), sx, plot.top, bottom, layer.color, layer.width || 1.5, layer.dash);
  } else if (layer.kind === "ticks") {
    drawVerticals(ctx, get(layer.x), sx, bottom, bottom - 9, layer.color, 1.5);
  } else if (layer.kind === "shade" || layer.kind === "span") {
    const a = sx(layer.x0), b = sx(layer.x1);
    ctx.fillStyle = layer.color;
    ctx.fillRect(Math.min(a, b), plot.top, Math.abs(b - a), plot.height);
  } else {
    return false;
  }
  return true;
}

/** A 22 x 12 legend swatch for `layer` with its left edge at x, centred on y. */
function legendSwatch(ctx, layer, x, y, markerStyle) {
  ctx.save();
  const kind = layer.kind;
  if (kind === "band" || kind === "shade" || kind === "span" || kind === "bars") {
    ctx.fillStyle = layer.color;
    ctx.fillRect(x, y - 6, 22, 12);
  } else if (kind === "line" || kind === "vline") {
    ctx.strokeStyle = layer.color;
    ctx.lineWidth = layer.width || 1.5;
    ctx.setLineDash(layer.dash || []);
    ctx.beginPath();
    ctx.moveTo(x, y);
    ctx.lineTo(x + 22, y);
    ctx.stroke();
  } else if (kind === "ticks") {
    ctx.strokeStyle = layer.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (const dx of [6, 11, 16]) {
      ctx.moveTo(x + dx, y - 6);
      ctx.lineTo(x + dx, y + 6);
    }
    ctx.stroke();
  } else if (kind === "points") {
    layerMarker(ctx, layer, x + 11, y, markerStyle);
  }
  ctx.restore();
}

/** The labelled layers of `layers`, one per distinct label, minus the kinds in `skip`. */
function legendEntries(layers, skip = []) {
  const seen = new Set();
  return layers.filter((l) => {
    if (!l.label || skip.includes(l.kind) || seen.has(l.label)) return false;
    seen.add(l.label);
    return true;
  });
}

/**
 * Legend rows in `columns` columns from (left, top): entry i sits at column i % columns, row
 * floor(i / columns), `row` pixels apart; its label starts 28 px right of the swatch and is
 * squeezed into `labelWidth` pixels.
 */
function drawLegend(ctx, entries, { left, top, columns, colWidth, row, labelWidth, markerStyle }) {
  textStyle(ctx, "11px sans-serif");
  entries.forEach((layer, i) => {
    const x = left + (i % columns) * colWidth;
    const y = top + Math.floor(i / columns) * row;
    legendSwatch(ctx, layer, x, y, markerStyle);
    ctx.fillStyle = INK.text;
    ctx.fillText(layer.label, x + 28, y, labelWidth);
  });
}

/** Colour at t in [0, 1] on a ramp through the [r, g, b] `stops` (grey for a non-finite t). */
function ramp(stops, t) {
  if (!isFinite(t)) return [200, 200, 200];
  const u = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  const f = u - i;
  const a = stops[i], b = stops[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + f * (b[k] - a[k])));
}

/** A CSS colour from [r, g, b] numbers. */
function rgb(c, alpha) {
  return `rgba(${c[0]}, ${c[1]}, ${c[2]}, ${alpha === undefined ? 1 : alpha})`;
}

/**
 * Paint a rows x cols grid of values (row-major) into `box` through an offscreen image, one
 * pixel per cell. colorOf(value) gives [r, g, b] or [r, g, b, alpha]; `flip` puts row 0 at the
 * bottom (y grows upwards); `smooth` interpolates when scaling; `cache` ({ image }) reuses the
 * offscreen canvas between paints.
 */
function drawImageGrid(ctx, values, rows, cols, box, colorOf, { flip = false, smooth = false, cache = null } = {}) {
  let off = cache && cache.image;
  if (!off || off.width !== cols || off.height !== rows) {
    off = document.createElement("canvas");
    off.width = cols;
    off.height = rows;
    if (cache) cache.image = off;
  }
  const octx = off.getContext("2d");
  const img = octx.createImageData(cols, rows);
  for (let r = 0; r < rows; r++) {
    const row = flip ? rows - 1 - r : r;
    for (let c = 0; c < cols; c++) {
      const color = colorOf(values[r * cols + c]);
      const k = 4 * (row * cols + c);
      img.data[k] = color[0];
      img.data[k + 1] = color[1];
      img.data[k + 2] = color[2];
      img.data[k + 3] = color.length > 3 ? color[3] : 255;
    }
  }
  octx.putImageData(img, 0, 0);
  ctx.save();
  ctx.imageSmoothingEnabled = smooth;
  ctx.drawImage(off, box.left, box.top, box.width, box.height);
  ctx.restore();
}

/**
 * A vertical colour-bar strip at (x, top), w x h, in `steps` bands: colorAt(1) at the top,
 * colorAt(0) at the bottom; each band overlaps the next by `overlap` px (hides seams); framed.
 */
function drawColorStrip(ctx, colorAt, x, top, w, h, steps, overlap) {
  for (let k = 0; k < steps; k++) {
    ctx.fillStyle = rgb(colorAt(1 - k / (steps - 1)));
    ctx.fillRect(x, top + (k * h) / steps, w, h / steps + overlap);
  }
  ctx.strokeStyle = INK.axis;
  ctx.lineWidth = 1;
  ctx.strokeRect(x, top, w, h);
}
