// Built by `npm run build` from js/ (esbuild); edit js/, not this file.

// js/shared.js
var SVG_NS = "http://www.w3.org/2000/svg";
function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== void 0 && text !== null) el.textContent = String(text);
  return el;
}
function svg(tag, cls, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  if (cls) el.setAttribute("class", cls);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}
function fmt(v, decimals = 3) {
  if (v === null || v === void 0 || !Number.isFinite(v)) return "–";
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && a < 10 ** -decimals) return v.toExponential(2);
  return v.toFixed(decimals);
}
function listen(model, handlers) {
  const pairs = Object.entries(handlers);
  for (const [event, fn] of pairs) model.on(event, fn);
  return () => {
    for (const [event, fn] of pairs) model.off(event, fn);
  };
}
var STATES = Object.freeze({
  NOT_FITTED: "not fitted",
  TRAINING: "training",
  FINISHED: "finished",
  EARLY_STOPPED: "early-stopped",
  STOPPED: "stopped",
  INTERRUPTED: "interrupted",
  FITTING: "fitting",
  FITTED: "fitted",
  COMPLETED: "completed",
  ERROR: "error",
  WAITING: "waiting",
  RUNNING: "running",
  DONE: "done"
});
function styleOf(styles, group, state) {
  const table = styles?.[group] || {};
  return table[state] || { label: state, color: "currentColor", final: true };
}

// js/monitor.js
function decimate(px, py, width) {
  if (px.length <= 2 * width) return [px, py];
  const ox = [];
  const oy = [];
  let col = null;
  let lo = null;
  let hi = null;
  const flush = () => {
    if (col === null) return;
    if (lo.i <= hi.i) {
      ox.push(lo.x, hi.x);
      oy.push(lo.y, hi.y);
    } else {
      ox.push(hi.x, lo.x);
      oy.push(hi.y, lo.y);
    }
  };
  for (let i = 0; i < px.length; i++) {
    if (py[i] === null) {
      flush();
      col = null;
      ox.push(px[i]);
      oy.push(null);
      continue;
    }
    const c = Math.round(px[i]);
    if (c !== col) {
      flush();
      col = c;
      lo = hi = { i, x: px[i], y: py[i] };
    } else {
      if (py[i] > lo.y) lo = { i, x: px[i], y: py[i] };
      if (py[i] < hi.y) hi = { i, x: px[i], y: py[i] };
    }
  }
  flush();
  return [ox, oy];
}
function pathData(px, py) {
  let d = "";
  let pen = false;
  for (let i = 0; i < px.length; i++) {
    if (py[i] === null) {
      pen = false;
      continue;
    }
    d += `${pen ? "L" : "M"}${px[i].toFixed(1)} ${py[i].toFixed(1)}`;
    pen = true;
  }
  return d;
}
function makeCard(name, frame) {
  const { w: W, h: H } = frame;
  const PAD = frame;
  const card = h("div", "lpw-monitor-card");
  card.dataset.probe = name;
  const head = h("div", "lpw-monitor-card-head");
  const label = h("span", "lpw-monitor-name lpw-mono", name);
  label.title = name;
  const state = h("span", "lpw-monitor-state");
  head.append(label, state);
  const chart = svg("svg", "lpw-monitor-chart", {
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    role: "img",
    "aria-label": `validation loss of ${name}`
  });
  const plot = svg("rect", "lpw-plot-bg", {
    x: PAD.l,
    y: PAD.t,
    width: W - PAD.l - PAD.r,
    height: H - PAD.t - PAD.b
  });
  const warm = svg("rect", "lpw-warmup", { y: PAD.t, height: H - PAD.t - PAD.b });
  const patience = svg("rect", "lpw-patience", { y: PAD.t, height: H - PAD.t - PAD.b });
  const curve = svg("path", "lpw-curve", { fill: "none" });
  const bestLine = svg("line", "lpw-best-line", { y1: PAD.t, y2: H - PAD.b });
  const best = svg("circle", "lpw-best", { r: 3.5 });
  const bestTitle = svg("title");
  best.append(bestTitle);
  const end = svg("g", "lpw-end");
  const stopLine = svg("line", "lpw-stop-line", { y1: PAD.t, y2: H - PAD.b });
  const stopLabel = svg("text", "lpw-stop-label", { y: PAD.t - 4 });
  const stopTitle = svg("title");
  stopLine.append(stopTitle);
  end.append(stopLine, stopLabel);
  const keptLink = svg("line", "lpw-kept-link");
  const kept = svg("path", "lpw-kept");
  const keptTitle = svg("title");
  kept.append(keptTitle);
  const yMax = svg("text", "lpw-axis", { x: PAD.l - 4, y: PAD.t + 8, "text-anchor": "end" });
  const yMin = svg("text", "lpw-axis", { x: PAD.l - 4, y: H - PAD.b, "text-anchor": "end" });
  const x0 = svg("text", "lpw-axis", { x: PAD.l, y: H - 4, "text-anchor": "start" });
  const x1 = svg("text", "lpw-axis lpw-xmax", { x: W - PAD.r, y: H - 4, "text-anchor": "end" });
  x0.textContent = "0";
  chart.append(
    plot,
    warm,
    patience,
    curve,
    bestLine,
    best,
    end,
    keptLink,
    kept,
    yMax,
    yMin,
    x0,
    x1
  );
  const foot = h("div", "lpw-monitor-reason lpw-muted");
  card.append(head, chart, foot);
  return {
    card,
    state,
    warm,
    patience,
    curve,
    best,
    bestLine,
    bestTitle,
    end,
    stopLine,
    stopLabel,
    stopTitle,
    keptLink,
    kept,
    keptTitle,
    yMax,
    yMin,
    x1,
    foot
  };
}
function show(el, on) {
  el.style.display = on ? "" : "none";
}
function drawCard(c, m, d, styles) {
  const n = d.steps.length;
  const lastStep = n ? d.steps[n - 1] : 0;
  const PAD = m.frame;
  const xmax = m.x_max;
  const [lo, hi] = [m.y_lo, m.y_hi];
  const kept = m.kept_val_loss;
  const hasKept = kept !== null && kept !== void 0;
  const pw = PAD.w - PAD.l - PAD.r;
  const ph = PAD.h - PAD.t - PAD.b;
  const X = (v) => PAD.l + v / xmax * pw;
  const Y = (v) => PAD.t + (1 - (v - lo) / (hi - lo)) * ph;
  const px = new Array(n);
  const py = new Array(n);
  for (let i = 0; i < n; i++) {
    px[i] = X(d.steps[i]);
    const v = d.losses[i];
    py[i] = v === null || v === void 0 ? null : Y(v);
  }
  const [dx, dy] = decimate(px, py, pw);
  c.curve.setAttribute("d", pathData(dx, dy));
  c.curve.dataset.points = String(n);
  const warmEnd = m.warmup || 0;
  c.warm.setAttribute("x", PAD.l);
  c.warm.setAttribute("width", Math.max(0, X(warmEnd) - PAD.l).toFixed(1));
  show(c.warm, warmEnd > 0);
  if (m.window) {
    const a = X(m.window[0]);
    const b = X(m.window[1]);
    c.patience.setAttribute("x", a.toFixed(1));
    c.patience.setAttribute("width", Math.max(0, b - a).toFixed(1));
  }
  show(c.patience, !!m.window);
  drawBest(c, m, d, X, Y);
  const style = styleOf(styles, "probe", m.state);
  drawEnd(c, m, style, X, PAD.l + pw / 2);
  drawKept(c, m, hasKept ? kept : null, px, py, X(m.kept_step ?? lastStep), Y);
  [c.yMax.textContent, c.yMin.textContent] = m.y_labels;
  c.x1.textContent = m.x_label;
  let last = null;
  for (let i = n - 1; i >= 0; i--) {
    if (d.losses[i] !== null && d.losses[i] !== void 0) {
      last = d.losses[i];
      break;
    }
  }
  c.foot.textContent = hasKept ? m.kept_foot || fmt(kept) : last !== null ? `val loss ${fmt(last)} (latest)` : "no evaluation yet";
  c.state.textContent = style.label;
  c.state.style.setProperty("--lpw-state", style.color);
  c.card.className = `lpw-monitor-card lpw-state-${m.state}`;
  c.card.dataset.state = m.state;
  c.card.title = m.stop_reason || "";
}
function drawBest(c, m, d, X, Y) {
  const hasBest = m.best_step !== null && m.best_step !== void 0;
  let bestLoss = m.best_val_loss;
  if (hasBest) {
    const i = d.steps.lastIndexOf(m.best_step);
    if (i >= 0 && d.losses[i] !== null) bestLoss = d.losses[i];
  }
  const visible = hasBest && bestLoss !== null && bestLoss !== void 0;
  if (visible) {
    const bx = X(m.best_step);
    c.best.setAttribute("cx", bx.toFixed(1));
    c.best.setAttribute("cy", Y(bestLoss).toFixed(1));
    c.bestLine.setAttribute("x1", bx.toFixed(1));
    c.bestLine.setAttribute("x2", bx.toFixed(1));
    c.bestTitle.textContent = `best: ${fmt(bestLoss)} at step ${m.best_step}`;
  }
  show(c.best, visible);
  show(c.bestLine, visible);
}
function drawEnd(c, m, style, X, middle) {
  const ended = style.final && m.stop_step !== null && m.stop_step !== void 0;
  if (ended) {
    const sx = X(m.stop_step);
    const right = sx > middle;
    c.end.style.setProperty("--lpw-state", style.color);
    c.stopLine.setAttribute("x1", sx.toFixed(1));
    c.stopLine.setAttribute("x2", sx.toFixed(1));
    c.stopLabel.setAttribute("x", (right ? sx - 3 : sx + 3).toFixed(1));
    c.stopLabel.setAttribute("text-anchor", right ? "end" : "start");
    c.stopLabel.textContent = `${style.label} @ ${m.stop_step}`;
    c.stopTitle.textContent = m.stop_reason || "";
  }
  show(c.end, ended);
}
function drawKept(c, m, kept, px, py, kx, Y) {
  const n = px.length;
  if (kept !== null) {
    const ky = Y(kept);
    const r = 4;
    c.kept.setAttribute(
      "d",
      `M${kx.toFixed(1)} ${(ky - r).toFixed(1)}L${(kx + r).toFixed(1)} ${ky.toFixed(1)}L${kx.toFixed(1)} ${(ky + r).toFixed(1)}L${(kx - r).toFixed(1)} ${ky.toFixed(1)}Z`
    );
    c.keptTitle.textContent = `kept weights: ${m.kept_foot || fmt(kept)} (${m.kept_label || ""})`;
    let li = n - 1;
    while (li >= 0 && py[li] === null) li--;
    if (li >= 0) {
      c.keptLink.setAttribute("x1", px[li].toFixed(1));
      c.keptLink.setAttribute("y1", py[li].toFixed(1));
      c.keptLink.setAttribute("x2", kx.toFixed(1));
      c.keptLink.setAttribute("y2", ky.toFixed(1));
    }
    show(c.keptLink, li >= 0);
  } else {
    show(c.keptLink, false);
  }
  show(c.kept, kept !== null);
}
var KEYS = [
  ["warmup", "lpw-key-warmup", "warm-up"],
  ["window", "lpw-key-patience", "patience window"],
  ["best", "lpw-key-best", "best"],
  ["kept", "lpw-key-kept", "kept weights (end point)"]
];
function buildView(model) {
  const v = { model, root: h("div", "lpw lpw-monitor"), keyEls: {} };
  const bar = h("div", "lpw-toolbar lpw-monitor-head");
  v.title = h("span", "lpw-monitor-title");
  const legend = h("span", "lpw-monitor-legend lpw-muted");
  for (const [id, cls, text] of KEYS) {
    const item = h("span", "lpw-monitor-key");
    item.dataset.key = id;
    item.append(h("span", `lpw-key ${cls}`), document.createTextNode(` ${text}`));
    v.keyEls[id] = item;
    legend.append(item);
  }
  v.stop = h("button", "lpw-btn lpw-stop", "Stop");
  v.stop.type = "button";
  v.note = h("span", "lpw-monitor-note lpw-muted");
  bar.append(v.title, v.stop, v.note, legend);
  v.grid = h("div", "lpw-monitor-grid");
  v.root.append(bar, v.grid);
  v.data = /* @__PURE__ */ new Map();
  v.cards = /* @__PURE__ */ new Map();
  v.resyncAsked = false;
  return v;
}
function series(v, name) {
  let d = v.data.get(name);
  if (!d) {
    d = { steps: [], losses: [], total: 0 };
    v.data.set(name, d);
  }
  return d;
}
function loadCurves(v, curves) {
  for (const [name, pair] of Object.entries(curves || {})) {
    const d = series(v, name);
    d.steps = Array.from(pair[0] || []);
    d.losses = Array.from(pair[1] || []);
    d.total = typeof pair[2] === "number" ? pair[2] : d.steps.length;
  }
}
function draw(v, only) {
  const styles = v.model.get("styles") || {};
  const seen = /* @__PURE__ */ new Set();
  const used = { warmup: false, window: false, best: false, kept: false };
  for (const m of v.model.get("meta") || []) {
    const name = m.name;
    seen.add(name);
    let c = v.cards.get(name);
    if (!c) {
      c = makeCard(name, m.frame);
      v.cards.set(name, c);
    }
    v.grid.append(c.card);
    if (!only || only.has(name) || c.metaKey !== JSON.stringify(m)) {
      c.metaKey = JSON.stringify(m);
      drawCard(c, m, series(v, name), styles);
    }
    used.warmup = used.warmup || !!m.warmup;
    used.window = used.window || !!m.window;
    used.best = used.best || m.best_step !== null && m.best_step !== void 0;
    used.kept = used.kept || m.kept_val_loss !== null && m.kept_val_loss !== void 0;
  }
  for (const [name, c] of v.cards) {
    if (!seen.has(name)) {
      c.card.remove();
      v.cards.delete(name);
    }
  }
  for (const [id, item] of Object.entries(v.keyEls)) item.hidden = !used[id];
  drawButton(v);
}
function drawButton(v) {
  const { model, stop } = v;
  const running = !!model.get("running");
  const requested = !!model.get("stop_requested");
  const supported = model.get("stop_supported") !== false;
  stop.disabled = !running || requested || !supported;
  stop.textContent = running ? requested ? "Stopping…" : "Stop" : model.get("outcome") === STATES.STOPPED ? "Stopped" : "Stop";
  stop.title = supported ? "End the fit cleanly: training stops after the current batch (a test-set pass runs to its end); probes keep their best weights" : model.get("stop_hint") || "";
  v.note.textContent = !supported && running ? model.get("stop_hint") || "" : "";
  v.title.textContent = model.get("title") || "Validation loss";
  v.root.dataset.running = String(running);
}
function askResync(v) {
  if (v.resyncAsked) return;
  v.resyncAsked = true;
  v.model.send({ type: "resync" });
}
function addPoints(v, points) {
  const touched = /* @__PURE__ */ new Set();
  for (const [name, [start, steps, losses]] of Object.entries(points || {})) {
    const d = series(v, name);
    if (start > d.total) {
      askResync(v);
      continue;
    }
    const skip = d.total - start;
    for (let i = skip; i < steps.length; i++) {
      d.steps.push(steps[i]);
      d.losses.push(losses[i]);
    }
    d.total = Math.max(d.total, start + steps.length);
    touched.add(name);
  }
  draw(v, touched);
}
function onMessage(v, msg) {
  if (!msg || typeof msg !== "object") return;
  if (msg.type === "reset" || msg.type === "snapshot") {
    v.data.clear();
    if (msg.type === "snapshot") loadCurves(v, msg.curves);
    v.resyncAsked = false;
    draw(v);
  } else if (msg.type === "points") {
    addPoints(v, msg.points);
  }
}
var BUTTON_KEYS = [
  "running",
  "outcome",
  "stop_requested",
  "stop_supported",
  "stop_hint",
  "title"
];
function render({ model, el }) {
  const v = buildView(model);
  el.append(v.root);
  const onStop = () => {
    if (v.stop.disabled) return;
    model.set("stop_requested", true);
    model.save_changes();
    drawButton(v);
  };
  v.stop.addEventListener("click", onStop);
  const onCurves = () => {
    const curves = model.get("curves") || {};
    if (Object.keys(curves).length) {
      v.data.clear();
      loadCurves(v, curves);
    }
    draw(v);
  };
  const onButton = () => drawButton(v);
  const unlisten = listen(model, {
    "msg:custom": (msg) => onMessage(v, msg),
    "change:meta": () => draw(v),
    "change:curves": onCurves,
    "change:styles": () => draw(v),
    ...Object.fromEntries(BUTTON_KEYS.map((k) => [`change:${k}`, onButton]))
  });
  loadCurves(v, model.get("curves"));
  draw(v);
  if (model.get("running")) askResync(v);
  return () => {
    v.stop.removeEventListener("click", onStop);
    unlisten();
  };
}
var monitor_default = { render };
export {
  decimate,
  monitor_default as default,
  pathData
};
