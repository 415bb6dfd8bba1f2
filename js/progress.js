// Progress of one fit (anywidget ESM, no dependencies, no build step).
//
// Model state (set by Python at most ~10 times a second; every word is Python's):
//   fit     {state: waiting|running|completed|stopped|interrupted|error, headline, stats,
//            message, reasons: [text], phase, elapsed, eta, rate, ...}
//   phases  [{key, label, state: running|done|stopped|interrupted|error, text, fraction}]
//   probes  [{name, state, step, max_steps, fraction, detail, note, ...}]
//   styles  {probe: {state: {label, color}}, fit: {...}, phase: {...}}  (display/states.py)
//   title
// Rows are keyed and updated in place; every string goes in through textContent,
// never parsed as HTML. A state's colour reaches the CSS as the variable --lpw-state.

import { h, STATES, styleOf } from "./shared.js";

function makeRow(kind, key) {
  const row = h("div", `lpw-progress-row lpw-progress-${kind}`);
  row.setAttribute("role", "listitem");
  row.dataset[kind === "phase" ? "phase" : "probe"] = key;
  const label = h("span", "lpw-progress-name", key);
  if (kind === "probe") label.classList.add("lpw-mono");
  label.title = key;
  const bar = h("div", "lpw-progress-bar");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", key);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  const fill = h("div", "lpw-progress-fill");
  bar.append(fill);
  const state = h("span", "lpw-progress-state");
  const detail = h("span", "lpw-progress-detail lpw-muted");
  const note = h("div", "lpw-progress-reason lpw-muted");
  row.append(label, bar, state, detail, note);
  return { row, label, fill, bar, state, detail, note };
}

function syncRows(list, rows, items, kind, keyOf, styles, group) {
  const seen = new Set();
  for (const item of items) {
    const key = keyOf(item);
    seen.add(key);
    let r = rows.get(key);
    if (!r) {
      r = makeRow(kind, key);
      rows.set(key, r);
    }
    list.append(r.row); // keeps the order; a no-op when already in place
    const style = styleOf(styles, group, item.state);
    r.row.className = `lpw-progress-row lpw-progress-${kind} lpw-state-${item.state}`;
    r.row.dataset.state = item.state;
    r.row.style.setProperty("--lpw-state", style.color);
    if (kind === "phase") r.label.textContent = item.label;
    const pct = 100 * Math.max(0, Math.min(1, item.fraction || 0));
    r.fill.style.width = `${pct.toFixed(2)}%`;
    r.bar.setAttribute("aria-valuenow", pct.toFixed(0));
    r.state.textContent = style.label;
    r.detail.textContent = kind === "phase" ? item.text || "" : item.detail || "";
    r.note.textContent = item.note || "";
    r.note.hidden = !item.note;
    r.row.title = item.note ? `${key}: ${item.note}` : key;
  }
  for (const [key, r] of rows) {
    if (!seen.has(key)) {
      r.row.remove();
      rows.delete(key);
    }
  }
}

function render({ model, el }) {
  const root = h("div", "lpw lpw-progress");
  const head = h("div", "lpw-progress-head");
  const title = h("span", "lpw-progress-title");
  const status = h("span", "lpw-progress-status");
  const stats = h("span", "lpw-progress-stats lpw-muted");
  head.append(title, status, stats);
  const message = h("div", "lpw-progress-message");
  message.setAttribute("role", "status");
  const phaseList = h("div", "lpw-progress-list lpw-progress-phases");
  phaseList.setAttribute("role", "list");
  phaseList.setAttribute("aria-label", "phases");
  const list = h("div", "lpw-progress-list lpw-progress-probes");
  list.setAttribute("role", "list");
  list.setAttribute("aria-label", "probes");
  const reasons = h("ul", "lpw-progress-reasons lpw-muted");
  root.append(head, message, phaseList, list, reasons);
  el.append(root);

  const phaseRows = new Map();
  const probeRows = new Map();

  function draw() {
    const styles = model.get("styles") || {};
    const fit = model.get("fit") || {};
    const fitState = fit.state || STATES.WAITING;
    const fitStyle = styleOf(styles, "fit", fitState);
    title.textContent = model.get("title") || "Probes";
    root.dataset.fitState = fitState;
    status.textContent = fit.headline || fitStyle.label;
    status.className = `lpw-progress-status lpw-fit-${fitState}`;
    status.style.setProperty("--lpw-state", fitStyle.color);
    stats.textContent = fit.stats || "";
    message.textContent = fit.message || "";
    message.hidden = !fit.message;
    syncRows(
      phaseList,
      phaseRows,
      model.get("phases") || [],
      "phase",
      (p) => p.key,
      styles,
      "phase",
    );
    phaseList.hidden = phaseRows.size === 0;
    syncRows(list, probeRows, model.get("probes") || [], "probe", (p) => p.name, styles, "probe");
    reasons.replaceChildren(...(fit.reasons || []).map((r) => h("li", null, r)));
    reasons.hidden = !(fit.reasons || []).length;
  }

  const keys = ["probes", "phases", "fit", "title", "styles"];
  const onChange = () => draw();
  for (const k of keys) model.on(`change:${k}`, onChange);
  draw();
  return () => {
    for (const k of keys) model.off(`change:${k}`, onChange);
  };
}

export default { render };
