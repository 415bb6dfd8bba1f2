// Per-probe progress bars (anywidget ESM, no dependencies, no build step).
//
// Model state (set by Python at most ~10 times a second):
//   probes  [{name, submodule, state, step, max_steps, epoch, train_loss, val_loss,
//             best_val_loss, best_step, reason}]
//           state: waiting | training | early-stopped | finished | stopped | interrupted | error
//   fit     {state: waiting|running|completed|stopped|interrupted|error, phase, epoch,
//            num_epoch, done, total, elapsed, rate (examples/s), eta (s, an upper bound), message}
//   title
// Rows are keyed by probe name and updated in place; every string goes in through
// textContent, never parsed as HTML.

const FINAL = new Set(["early-stopped", "finished", "stopped", "interrupted", "error"]);

function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined && text !== null) el.textContent = String(text);
  return el;
}

export function formatSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "?";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

function fmtLoss(x) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(4);
}

function fmtRate(r) {
  if (r === null || r === undefined || !isFinite(r)) return null;
  return r >= 100 ? r.toFixed(0) : r.toFixed(1);
}

export function fraction(p) {
  if (!p.max_steps) return FINAL.has(p.state) ? 1 : 0;
  return Math.max(0, Math.min(1, p.step / p.max_steps));
}

const PHASES = {
  "extract-val": "extracting validation activations",
  "extract-train": "epoch 1: extracting + training",
  train: "training",
  refine: "fitting to convergence",
  "extract-eval": "evaluating",
  starting: "starting",
  done: "done",
};

function headline(fit) {
  const state = fit.state || "waiting";
  if (state === "waiting") return "waiting for fit_probes…";
  if (state !== "running") return `fit ${state}`;
  let phase = PHASES[fit.phase] || fit.phase || "";
  if (fit.phase === "train" && fit.num_epoch) phase += ` · epoch ${fit.epoch}/${fit.num_epoch}`;
  return phase;
}

function probeDetail(p) {
  const parts = [`step ${p.step}/${p.max_steps || "?"}`];
  if (p.epoch) parts.push(`epoch ${p.epoch}`);
  parts.push(`val ${fmtLoss(p.val_loss)}`);
  if (p.best_val_loss !== null && p.best_val_loss !== undefined) {
    parts.push(`best ${fmtLoss(p.best_val_loss)} @ ${p.best_step}`);
  }
  return parts.join(" · ");
}

function render({ model, el }) {
  const root = h("div", "lpw lpw-progress");
  const head = h("div", "lpw-progress-head");
  const title = h("span", "lpw-progress-title");
  const status = h("span", "lpw-progress-status");
  const stats = h("span", "lpw-progress-stats lpw-muted");
  head.append(title, status, stats);
  const overall = h("div", "lpw-progress-overall");
  const overallFill = h("div", "lpw-progress-overall-fill");
  overall.append(overallFill);
  const message = h("div", "lpw-progress-message");
  const list = h("div", "lpw-progress-list");
  list.setAttribute("role", "list");
  root.append(head, overall, list, message);
  el.append(root);

  const rows = new Map(); // name -> {row, name, fill, bar, state, detail, reason}

  function makeRow(name) {
    const row = h("div", "lpw-progress-row");
    row.setAttribute("role", "listitem");
    row.dataset.probe = name;
    const label = h("span", "lpw-progress-name lpw-mono", name);
    label.title = name;
    const bar = h("div", "lpw-progress-bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-label", name);
    bar.setAttribute("aria-valuemin", "0");
    const fill = h("div", "lpw-progress-fill");
    bar.append(fill);
    const state = h("span", "lpw-progress-state");
    const detail = h("span", "lpw-progress-detail lpw-muted");
    const reason = h("div", "lpw-progress-reason lpw-muted");
    row.append(label, bar, state, detail, reason);
    return { row, fill, bar, state, detail, reason, cls: "" };
  }

  function draw() {
    const probes = model.get("probes") || [];
    const fit = model.get("fit") || {};
    title.textContent = model.get("title") || "Probes";
    const fitState = fit.state || "waiting";
    root.dataset.fitState = fitState;
    status.textContent = headline(fit);
    status.className = `lpw-progress-status lpw-fit-${fitState}`;

    const bits = [];
    if (fit.state === "running" && fit.total) bits.push(`${fit.done}/${fit.total} examples`);
    const rate = fmtRate(fit.rate);
    if (rate !== null) bits.push(`${rate} examples/s`);
    if (fit.elapsed !== null && fit.elapsed !== undefined) bits.push(formatSeconds(fit.elapsed));
    if (fit.state === "running" && fit.eta !== null && fit.eta !== undefined) {
      bits.push(`ETA ≤ ${formatSeconds(fit.eta)}`);
    }
    stats.textContent = bits.join(" · ");
    message.textContent = fit.message || "";
    message.hidden = !fit.message;

    const seen = new Set();
    let sum = 0;
    for (const p of probes) {
      seen.add(p.name);
      let r = rows.get(p.name);
      if (!r) {
        r = makeRow(p.name);
        rows.set(p.name, r);
      }
      list.append(r.row); // keeps the probes' order; a no-op when already in place
      const f = fraction(p);
      sum += FINAL.has(p.state) ? 1 : f;
      r.fill.style.width = `${(f * 100).toFixed(2)}%`;
      r.bar.setAttribute("aria-valuemax", String(p.max_steps || 0));
      r.bar.setAttribute("aria-valuenow", String(p.step || 0));
      const cls = `lpw-progress-row lpw-state-${p.state}`;
      if (r.cls !== cls) {
        r.row.className = cls;
        r.cls = cls;
      }
      r.row.dataset.state = p.state;
      r.state.textContent = p.state;
      r.detail.textContent = probeDetail(p);
      const showReason = FINAL.has(p.state) && p.reason;
      r.reason.textContent = showReason ? p.reason : "";
      r.reason.hidden = !showReason;
      r.row.title = showReason ? `${p.name}: ${p.reason}` : p.name;
    }
    for (const [name, r] of rows) {
      if (!seen.has(name)) {
        r.row.remove();
        rows.delete(name);
      }
    }
    const done = fitState !== "running" && fitState !== "waiting";
    const whole = probes.length ? sum / probes.length : 0;
    overallFill.style.width = `${((done ? 1 : whole) * 100).toFixed(2)}%`;
    overall.className = `lpw-progress-overall lpw-fit-${fitState}`;
  }

  const onChange = () => draw();
  model.on("change:probes", onChange);
  model.on("change:fit", onChange);
  model.on("change:title", onChange);
  draw();
  return () => {
    model.off("change:probes", onChange);
    model.off("change:fit", onChange);
    model.off("change:title", onChange);
  };
}

export default { render };
