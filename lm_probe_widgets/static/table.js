// Built by `npm run build` from js/ (esbuild); edit js/, not this file.

// js/shared.js
function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== void 0 && text !== null) el.textContent = String(text);
  return el;
}
function button(label, title, onClick) {
  const b = h("button", "lpw-btn", label);
  b.type = "button";
  if (title) b.title = title;
  b.addEventListener("click", onClick);
  return b;
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
function hideStaticCopies(model, el) {
  const hidden = /* @__PURE__ */ new Set();
  function run() {
    if (!el.isConnected) return;
    const ids = model.get("copy_ids") || [];
    const roots = /* @__PURE__ */ new Set([document, el.getRootNode()]);
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
  const timers = [0, 100, 500, 2e3].map((ms) => setTimeout(run, ms));
  model.on("change:copy_ids", run);
  return () => {
    timers.forEach(clearTimeout);
    model.off("change:copy_ids", run);
    for (const node of hidden) node.style.display = "";
  };
}

// js/table.js
var PAGE = 1e3;
function viewOrder(rows, columns, sort) {
  const col = sort && sort.column != null ? columns.find((c) => c.name === sort.column) : null;
  const order = col && (sort.descending ? col.descending : col.ascending) || [];
  return order.length === rows.length ? [...order] : rows.map((_, i) => i);
}
function toTsv(rows, columns, order) {
  const clean = (v) => v === null || v === void 0 ? "" : String(v).replace(/[\t\r\n]+/g, " ");
  const lines = [columns.map((c) => clean(c.name)).join("	")];
  for (const i of order) lines.push(rows[i].map(clean).join("	"));
  return `${lines.join("\n")}
`;
}
function bestCells(columns) {
  return columns.map((c) => new Set(Array.isArray(c.best_rows) ? c.best_rows : []));
}
function download(el, text, filename, mime) {
  const blob = new Blob([text], { type: mime });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.style.display = "none";
  el.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1e4);
}
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_err) {
    }
  }
  const ta = document.createElement("textarea");
  ta.value = text;
  ta.setAttribute("readonly", "");
  ta.style.position = "fixed";
  ta.style.opacity = "0";
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch (_err) {
    ok = false;
  }
  ta.remove();
  return ok;
}
function newTable(model, root) {
  return {
    model,
    root,
    columns: [],
    rows: [],
    sort: {},
    order: [],
    // row positions in display order
    best: [],
    // per column, the set of row positions holding its best value
    limit: PAGE,
    // rows rendered
    visible: [],
    // column positions shown
    compactView: false,
    // intervals beside their metric (their own columns hidden)
    toastTimer: null
  };
}
function toolButton(label, title, cls, onClick) {
  const b = button(label, title, onClick);
  b.classList.add(cls);
  return b;
}
function buildToolbar(t) {
  const toolbar = h("div", "lpw-toolbar");
  t.titleEl = h("span", "lpw-table-title");
  t.count = h("span", "lpw-muted lpw-table-count");
  const spacer = h("span", "lpw-table-spacer");
  const csvBtn = toolButton(
    "CSV",
    "Download the table as CSV (current sort)",
    "lpw-table-csv",
    () => ask(t, "csv")
  );
  const jsonBtn = toolButton(
    "JSON",
    "Download the table as JSON records (current sort)",
    "lpw-table-json",
    () => ask(t, "json")
  );
  const copyBtn = toolButton(
    "Copy",
    "Copy the table (tab-separated) to the clipboard",
    "lpw-table-copy",
    () => copyTable(t)
  );
  t.allBtn = toolButton(
    "All columns",
    "Show every column of the metrics",
    "lpw-table-all",
    () => toggleAll(t)
  );
  t.toast = h("span", "lpw-toast lpw-table-toast");
  t.toast.setAttribute("role", "status");
  toolbar.append(t.titleEl, t.count, spacer, t.toast, t.allBtn, csvBtn, jsonBtn, copyBtn);
  return toolbar;
}
function buildGrid(t) {
  t.scroll = h("div", "lpw-table-scroll");
  const table = h("table", "lpw-table-grid");
  t.thead = h("thead");
  t.tbody = h("tbody");
  table.append(t.thead, t.tbody);
  t.scroll.appendChild(table);
  return t.scroll;
}
function buildMore(t) {
  t.more = toolButton("Show more", "Render more rows", "lpw-table-more", () => {
    t.limit += PAGE;
    drawBody(t);
  });
  return t.more;
}
function note(t, text) {
  t.toast.textContent = text;
  clearTimeout(t.toastTimer);
  t.toastTimer = setTimeout(() => {
    t.toast.textContent = "";
  }, 3e3);
}
function ask(t, format) {
  t.model.send({ type: "export", format });
  note(t, `Preparing ${format.toUpperCase()}…`);
}
function onMsg(t, msg) {
  if (msg?.type !== "export") return;
  download(t.root, msg.text, msg.filename, msg.mime);
  note(t, `${String(msg.format).toUpperCase()} downloaded`);
}
async function copyTable(t) {
  const { order } = t;
  const ok = await copyText(toTsv(t.rows, t.columns, order));
  note(t, ok ? `Copied ${order.length} row${order.length === 1 ? "" : "s"}` : "Copy failed");
}
function toggleAll(t) {
  t.model.set("show_all", !t.model.get("show_all"));
  t.model.save_changes();
  redraw(t);
}
function compactColumns(columns) {
  return columns.map((c, j) => c.compact ? j : -1).filter((j) => j >= 0).sort((a, b) => columns[a].compact - columns[b].compact);
}
function load(t) {
  const { model } = t;
  t.columns = model.get("columns") || [];
  const { columns } = t;
  t.rows = model.get("rows") || [];
  t.sort = model.get("sort") || {};
  t.titleEl.textContent = model.get("title") || "";
  t.scroll.style.maxHeight = `${model.get("max_height") || 480}px`;
  t.best = bestCells(columns);
  t.order = viewOrder(t.rows, columns, t.sort);
  const compact = compactColumns(columns);
  const all = columns.map((_, j) => j);
  const showAll = !!model.get("show_all") || compact.length === 0;
  const hasChoice = compact.length > 0 && compact.length < columns.length;
  t.visible = showAll ? all : compact;
  t.allBtn.hidden = !hasChoice;
  t.allBtn.textContent = showAll ? "Fewer columns" : `All columns (${columns.length})`;
  t.allBtn.setAttribute("aria-pressed", String(showAll));
  t.compactView = !showAll;
}
function headerCell(t, c) {
  const { sort } = t;
  const th = h("th", c.kind === "number" ? "lpw-table-num" : null);
  th.dataset.column = c.name;
  const active = sort.column === c.name;
  th.setAttribute("aria-sort", active ? sort.descending ? "descending" : "ascending" : "none");
  const b = h("button", "lpw-table-sort");
  b.type = "button";
  b.appendChild(h("span", "lpw-table-colname", c.label || c.name));
  b.appendChild(h("span", "lpw-table-arrow", active ? sort.descending ? "▼" : "▲" : ""));
  const dir = c.better ? ` (${c.better})` : "";
  b.title = `Sort by ${c.label || c.name}${dir}; column "${c.name}"`;
  b.addEventListener("click", () => sortBy(t, c.name));
  th.appendChild(b);
  return th;
}
function sortBy(t, name) {
  const col = t.columns.find((c) => c.name === name);
  const first = !!col && !!col.first_descending;
  const next = { column: name, descending: t.sort.column === name ? !t.sort.descending : first };
  t.sort = next;
  t.order = viewOrder(t.rows, t.columns, t.sort);
  t.model.set("sort", next);
  t.model.save_changes();
  drawHead(t);
  drawBody(t);
}
function drawHead(t) {
  const tr = h("tr");
  for (const j of t.visible) tr.appendChild(headerCell(t, t.columns[j]));
  t.thead.replaceChildren(tr);
}
function fillNumber(t, td, c, r, v) {
  td.textContent = fmt(v, c.decimals ?? 3);
  td.className = "lpw-table-num lpw-mono";
  td.title = String(v);
  const { columns, compactView } = t;
  const lo = compactView && c.ci ? columns.findIndex((x) => x.name === c.ci[0]) : -1;
  const hi = compactView && c.ci ? columns.findIndex((x) => x.name === c.ci[1]) : -1;
  if (lo >= 0 && hi >= 0 && typeof r[lo] === "number" && typeof r[hi] === "number") {
    const d = c.decimals ?? 3;
    td.append(h("span", "lpw-table-ci", ` [${fmt(r[lo], d)}, ${fmt(r[hi], d)}]`));
    td.title = `${v} (95% interval ${r[lo]} to ${r[hi]})`;
  }
}
function bodyCell(t, i, j) {
  const c = t.columns[j];
  const r = t.rows[i];
  const v = r[j];
  const td = h("td");
  td.dataset.col = c.name;
  if (v === null || v === void 0) {
    td.textContent = "–";
    td.className = "lpw-table-na";
    td.title = "missing";
  } else if (c.kind === "number" && typeof v === "number") {
    fillNumber(t, td, c, r, v);
  } else {
    td.textContent = String(v);
  }
  if (t.best[j]?.has(i)) {
    td.classList.add("lpw-table-best");
    td.title = `${td.title || String(v)} (best ${c.name})`;
  }
  return td;
}
function bodyRow(t, i) {
  const tr = h("tr");
  tr.dataset.row = String(i);
  for (const j of t.visible) tr.appendChild(bodyCell(t, i, j));
  return tr;
}
function drawBody(t) {
  const { order, rows } = t;
  const frag = document.createDocumentFragment();
  const shown = Math.min(order.length, t.limit);
  for (let k = 0; k < shown; k++) frag.appendChild(bodyRow(t, order[k]));
  t.tbody.replaceChildren(frag);
  t.more.hidden = shown >= order.length;
  t.more.textContent = `Show more (${order.length - shown} hidden)`;
  t.count.textContent = `${rows.length} row${rows.length === 1 ? "" : "s"}`;
}
function redraw(t) {
  load(t);
  drawHead(t);
  drawBody(t);
}
var DATA_KEYS = ["columns", "rows", "sort", "title", "filename", "max_height", "show_all"];
function render({ model, el }) {
  const root = h("div", "lpw lpw-live lpw-table");
  el.appendChild(root);
  const t = newTable(model, root);
  root.append(buildToolbar(t), buildGrid(t), buildMore(t));
  const handlers = { "msg:custom": (msg) => onMsg(t, msg) };
  for (const k of DATA_KEYS) handlers[`change:${k}`] = () => redraw(t);
  const unlisten = listen(model, handlers);
  redraw(t);
  const unhide = hideStaticCopies(model, root);
  return () => {
    unlisten();
    unhide();
    clearTimeout(t.toastTimer);
  };
}
var table_default = { render };
export {
  table_default as default,
  viewOrder
};
