// Helpers shared by every widget module: DOM and SVG builders, a button, number
// formatting and the state styles Python sends (display/states.py).
//
// Each widget module starts with `import { ... } from "./shared.js";`. A browser that
// loads the modules from files (the test harness) follows that import; anywidget
// loads each module from a blob URL, where a relative import cannot resolve, so
// lm_probe_widgets/display/assets.py (`esm_source`) puts this file's text in place of
// the import line. Either way there is one source, and one copy per loaded module.
// This file imports nothing, and every name it defines is exported.

export const SVG_NS = "http://www.w3.org/2000/svg";

// An element with a class and text (textContent: nothing is parsed as HTML).
export function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined && text !== null) el.textContent = String(text);
  return el;
}

// An SVG element with a class and attributes.
export function svg(tag, cls, attrs) {
  const el = document.createElementNS(SVG_NS, tag);
  if (cls) el.setAttribute("class", cls);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  return el;
}

// A themed button that calls onClick.
export function button(label, title, onClick) {
  const b = h("button", "lpw-btn", label);
  b.type = "button";
  if (title) b.title = title;
  b.addEventListener("click", onClick);
  return b;
}

// As display/columns.py format_number writes every number of this package: integers
// whole, else `decimals` decimals, magnitudes below 10^-decimals in exponent form so
// they never read as zero; missing as a dash.
export function fmt(v, decimals = 3) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && a < 10 ** -decimals) return v.toExponential(2);
  return v.toFixed(decimals);
}

// Subscribe `handlers` ({"change:x": fn, "msg:custom": fn}) to the model; returns the
// function that unsubscribes them all (for render's cleanup).
export function listen(model, handlers) {
  const pairs = Object.entries(handlers);
  for (const [event, fn] of pairs) model.on(event, fn);
  return () => {
    for (const [event, fn] of pairs) model.off(event, fn);
  };
}

// Every state name the views compare against: core/engine/states.py's enums, by member
// name (tests/test_widgets_state.py checks this table against js_state_names()).
export const STATES = Object.freeze({
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
  DONE: "done",
});

// The label and colour of a state, from the tables Python sends (display/states.py):
// group "probe", "fit" or "phase".
export function styleOf(styles, group, state) {
  const table = styles?.[group] || {};
  return table[state] || { label: state, color: "currentColor", final: true };
}

// While this live view is on the page, hide its static copies: the outputs marked
// data-lpw-copy with one of the model's `copy_ids`. JupyterLab's stylesheet rules
// (:has() on its output classes, widgets/snapshot.py) already do it there; this covers
// front-ends without those classes or without :has() (VS Code, older browsers). A view
// taken away shows the copies again. Returns the cleanup for render.
export function hideStaticCopies(model, el) {
  const hidden = new Set();
  function run() {
    if (!el.isConnected) return;
    const ids = model.get("copy_ids") || [];
    const roots = new Set([document, el.getRootNode()]);
    for (const root of roots) {
      for (const id of ids) {
        const sel = `.lpw-static-copy[data-lpw-copy="${CSS.escape(String(id))}"]`;
        for (const node of root.querySelectorAll(sel)) {
          node.style.display = "none";
          hidden.add(node);
        }
      }
    }
  }
  // the copy is the next output, drawn after the live view: look again a few times
  const timers = [0, 100, 500, 2000].map((ms) => setTimeout(run, ms));
  model.on("change:copy_ids", run);
  return () => {
    timers.forEach(clearTimeout);
    model.off("change:copy_ids", run);
    for (const node of hidden) node.style.display = "";
  };
}
