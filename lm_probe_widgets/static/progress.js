// Built by `npm run build` from js/ (esbuild); edit js/, not this file.

// js/shared.js
function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== void 0 && text !== null) el.textContent = String(text);
  return el;
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

// js/progress.js
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
  const seen = /* @__PURE__ */ new Set();
  for (const item of items) {
    const key = keyOf(item);
    seen.add(key);
    let r = rows.get(key);
    if (!r) {
      r = makeRow(kind, key);
      rows.set(key, r);
    }
    list.append(r.row);
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
  const phaseRows = /* @__PURE__ */ new Map();
  const probeRows = /* @__PURE__ */ new Map();
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
      "phase"
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
var progress_default = { render };
export {
  progress_default as default
};
