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
