// Metrics table (anywidget ESM, no dependencies, no build step).
//
// Model state:  columns  [{name, kind: "number"|"string"|"bool", best: "min"|"max"|null,
//                          better: "lower is better"|"higher is better"|"",
//                          best_rows: [row positions holding the best value],
//                          label, compact (position in the compact view, or null),
//                          decimals, ci: [low_column, high_column]|null,
//                          ascending, descending: row positions in either sort order,
//                          first_descending: the first click's direction}]
//               Which value is best is decided in Python (display/columns.py); this
//               file only shows it.
//               rows     [[value, ...], ...]   (null = missing / NaN)
//               sort     {column, descending} or {}   (synced back to Python)
//               show_all  false: only the compact columns (Python chose them), intervals
//                         beside their metric; true: every column  (synced back)
//               title, filename, max_height
// Downloads: the CSV / JSON buttons ask the kernel ({type: "export", format}); Python
// replies with MetricsTable.to_csv()/to_json() of the current view ({type: "export",
// format, filename, mime, text}) and the browser saves that text: built once, in Python.
// Every value is written with textContent: nothing from the data is parsed as HTML.

import { button, fmt, h, hideStaticCopies, listen } from "./shared.js";

const PAGE = 1000; // rows rendered at once; "Show more" adds the next page

// Row positions in display order: the column's order as Python sorted it (stable,
// missing values last), or the rows as given when unsorted.
export function viewOrder(rows, columns, sort) {
  const col = sort && sort.column != null ? columns.find((c) => c.name === sort.column) : null;
  const order = (col && (sort.descending ? col.descending : col.ascending)) || [];
  // columns and rows arrive together from Python; until both have, show rows as given
  return order.length === rows.length ? [...order] : rows.map((_, i) => i);
}

function toTsv(rows, columns, order) {
  const clean = (v) => (v === null || v === undefined ? "" : String(v).replace(/[\t\r\n]+/g, " "));
  const lines = [columns.map((c) => clean(c.name)).join("\t")];
  for (const i of order) lines.push(rows[i].map(clean).join("\t"));
  return `${lines.join("\n")}\n`;
}

// Positions (in `rows`) of each column's best values, as Python marked them.
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
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_err) {
      // permission refused (e.g. an unfocused iframe): fall back below
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

// ---- the table's state ------------------------------------------------------------
// render keeps one object `t` with the model, the loaded data and the elements the
// functions below read or redraw; each function takes it first.
function newTable(model, root) {
  return {
    model,
    root,
    columns: [],
    rows: [],
    sort: {},
    order: [], // row positions in display order
    best: [], // per column, the set of row positions holding its best value
    limit: PAGE, // rows rendered
    visible: [], // column positions shown
    compactView: false, // intervals beside their metric (their own columns hidden)
    toastTimer: null,
  };
}

// ---- DOM skeleton -------------------------------------------------------------------
// A themed button with an extra class.
function toolButton(label, title, cls, onClick) {
  const b = button(label, title, onClick);
  b.classList.add(cls);
  return b;
}

// Title, row count, the toast, and the columns / CSV / JSON / Copy buttons.
function buildToolbar(t) {
  const toolbar = h("div", "lpw-toolbar");
  t.titleEl = h("span", "lpw-table-title");
  t.count = h("span", "lpw-muted lpw-table-count");
  const spacer = h("span", "lpw-table-spacer");
  const csvBtn = toolButton(
    "CSV",
    "Download the table as CSV (current sort)",
    "lpw-table-csv",
    () => ask(t, "csv"),
  );
  const jsonBtn = toolButton(
    "JSON",
    "Download the table as JSON records (current sort)",
    "lpw-table-json",
    () => ask(t, "json"),
  );
  const copyBtn = toolButton(
    "Copy",
    "Copy the table (tab-separated) to the clipboard",
    "lpw-table-copy",
    () => copyTable(t),
  );
  t.allBtn = toolButton("All columns", "Show every column of the metrics", "lpw-table-all", () =>
    toggleAll(t),
  );
  t.toast = h("span", "lpw-toast lpw-table-toast");
  t.toast.setAttribute("role", "status");
  toolbar.append(t.titleEl, t.count, spacer, t.toast, t.allBtn, csvBtn, jsonBtn, copyBtn);
  return toolbar;
}

// The scrolling <table> with an empty head and body.
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

// ---- toolbar actions ------------------------------------------------------------------
// A short message in the toolbar, cleared after 3 s.
function note(t, text) {
  t.toast.textContent = text;
  clearTimeout(t.toastTimer);
  t.toastTimer = setTimeout(() => {
    t.toast.textContent = "";
  }, 3000);
}

// Ask the kernel for the table as `format`; onMsg saves its reply.
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

// ---- data ---------------------------------------------------------------------------
// Positions of the compact columns, in the order Python gave them.
function compactColumns(columns) {
  return columns
    .map((c, j) => (c.compact ? j : -1))
    .filter((j) => j >= 0)
    .sort((a, b) => columns[a].compact - columns[b].compact);
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

// ---- head -----------------------------------------------------------------------------
// The header cell of column `c`: a button that sorts by it.
function headerCell(t, c) {
  const { sort } = t;
  const th = h("th", c.kind === "number" ? "lpw-table-num" : null);
  th.dataset.column = c.name;
  const active = sort.column === c.name;
  th.setAttribute("aria-sort", active ? (sort.descending ? "descending" : "ascending") : "none");
  const b = h("button", "lpw-table-sort");
  b.type = "button";
  b.appendChild(h("span", "lpw-table-colname", c.label || c.name));
  b.appendChild(h("span", "lpw-table-arrow", active ? (sort.descending ? "▼" : "▲") : ""));
  const dir = c.better ? ` (${c.better})` : "";
  b.title = `Sort by ${c.label || c.name}${dir}; column "${c.name}"`;
  b.addEventListener("click", () => sortBy(t, c.name));
  th.appendChild(b);
  return th;
}

// Sort by column `name` (again: the other way), here and in the model. The first click
// goes the way Python chose (the best values first).
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

// ---- body -----------------------------------------------------------------------------
// Fill `td` with number `v` of column `c` in row `r`; in the compact view with the
// column's interval beside it when the row has one.
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

// The cell of row position `i`, column position `j`.
function bodyCell(t, i, j) {
  const c = t.columns[j];
  const r = t.rows[i];
  const v = r[j];
  const td = h("td");
  td.dataset.col = c.name;
  if (v === null || v === undefined) {
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

// The first `limit` rows in display order, the "Show more" button and the row count.
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

// ---- render ---------------------------------------------------------------------------
const DATA_KEYS = ["columns", "rows", "sort", "title", "filename", "max_height", "show_all"];

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

export default { render };
