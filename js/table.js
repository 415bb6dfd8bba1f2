// Metrics table (anywidget ESM, no dependencies, no build step).
//
// Model state:  columns  [{name, kind: "number"|"string"|"bool", best: "min"|"max"|null,
//                          better: "lower is better"|"higher is better"|"",
//                          best_rows: [row positions holding the best value],
//                          label, compact (position in the compact view, or null),
//                          decimals, ci: [low_column, high_column]|null}]
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

import { h, button, fmt } from "./shared.js";

const PAGE = 1000; // rows rendered at once; "Show more" adds the next page

function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// Stable sort of row positions; missing values always last (both directions).
export function viewOrder(rows, columns, sort) {
  const idx = rows.map((_, i) => i);
  const j = sort && sort.column != null ? columns.findIndex((c) => c.name === sort.column) : -1;
  if (j < 0) return idx;
  const present = idx.filter((i) => rows[i][j] !== null && rows[i][j] !== undefined);
  const missing = idx.filter((i) => rows[i][j] === null || rows[i][j] === undefined);
  const desc = !!sort.descending;
  present.sort((p, q) => (desc ? compare(rows[q][j], rows[p][j]) : compare(rows[p][j], rows[q][j])));
  return present.concat(missing);
}

function toTsv(rows, columns, order) {
  const clean = (v) => (v === null || v === undefined ? "" : String(v).replace(/[\t\r\n]+/g, " "));
  const lines = [columns.map((c) => clean(c.name)).join("\t")];
  for (const i of order) lines.push(rows[i].map(clean).join("\t"));
  return lines.join("\n") + "\n";
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

function render({ model, el }) {
  const root = h("div", "lpw lpw-table");
  el.appendChild(root);

  let columns = [];
  let rows = [];
  let sort = {};
  let order = [];
  let best = [];
  let limit = PAGE;
  let visible = []; // column positions shown
  let compactView = false; // intervals beside their metric (their own columns hidden)

  const toolbar = h("div", "lpw-toolbar");
  const title = h("span", "lpw-table-title");
  const count = h("span", "lpw-muted lpw-table-count");
  const spacer = h("span", "lpw-table-spacer");
  const csvBtn = button("CSV", "Download the table as CSV (current sort)", () => ask("csv"));
  csvBtn.classList.add("lpw-table-csv");
  const jsonBtn = button("JSON", "Download the table as JSON records (current sort)", () =>
    ask("json"),
  );
  jsonBtn.classList.add("lpw-table-json");
  const copyBtn = button("Copy", "Copy the table (tab-separated) to the clipboard", async () => {
    const ok = await copyText(toTsv(rows, columns, order));
    note(ok ? `Copied ${order.length} row${order.length === 1 ? "" : "s"}` : "Copy failed");
  });
  copyBtn.classList.add("lpw-table-copy");
  const allBtn = button("All columns", "Show every column of the metrics", () => {
    model.set("show_all", !model.get("show_all"));
    model.save_changes();
    redraw();
  });
  allBtn.classList.add("lpw-table-all");
  const toast = h("span", "lpw-toast lpw-table-toast");
  toast.setAttribute("role", "status");
  toolbar.append(title, count, spacer, toast, allBtn, csvBtn, jsonBtn, copyBtn);

  const scroll = h("div", "lpw-table-scroll");
  const table = h("table", "lpw-table-grid");
  const thead = h("thead");
  const tbody = h("tbody");
  table.append(thead, tbody);
  scroll.appendChild(table);
  const more = button("Show more", "Render more rows", () => {
    limit += PAGE;
    drawBody();
  });
  more.classList.add("lpw-table-more");
  root.append(toolbar, scroll, more);

  let toastTimer = null;
  function note(text) {
    toast.textContent = text;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      toast.textContent = "";
    }, 3000);
  }
  function ask(format) {
    model.send({ type: "export", format });
    note(`Preparing ${format.toUpperCase()}…`);
  }

  function onMsg(msg) {
    if (!msg || msg.type !== "export") return;
    download(root, msg.text, msg.filename, msg.mime);
    note(`${String(msg.format).toUpperCase()} downloaded`);
  }

  function load() {
    columns = model.get("columns") || [];
    rows = model.get("rows") || [];
    sort = model.get("sort") || {};
    title.textContent = model.get("title") || "";
    scroll.style.maxHeight = (model.get("max_height") || 480) + "px";
    best = bestCells(columns);
    order = viewOrder(rows, columns, sort);
    const compact = columns.map((c, j) => (c.compact ? j : -1)).filter((j) => j >= 0)
      .sort((a, b) => columns[a].compact - columns[b].compact);
    const all = columns.map((_, j) => j);
    const showAll = !!model.get("show_all") || compact.length === 0;
    const hasChoice = compact.length > 0 && compact.length < columns.length;
    visible = showAll ? all : compact;
    allBtn.hidden = !hasChoice;
    allBtn.textContent = showAll ? "Fewer columns" : `All columns (${columns.length})`;
    allBtn.setAttribute("aria-pressed", String(showAll));
    compactView = !showAll;
  }

  function drawHead() {
    const tr = h("tr");
    visible.forEach((j) => {
      const c = columns[j];
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
      b.addEventListener("click", () => {
        const next = { column: c.name, descending: sort.column === c.name ? !sort.descending : false };
        sort = next;
        order = viewOrder(rows, columns, sort);
        model.set("sort", next);
        model.save_changes();
        drawHead();
        drawBody();
      });
      th.appendChild(b);
      tr.appendChild(th);
    });
    thead.replaceChildren(tr);
  }

  function drawBody() {
    const frag = document.createDocumentFragment();
    const shown = Math.min(order.length, limit);
    for (let k = 0; k < shown; k++) {
      const i = order[k];
      const tr = h("tr");
      tr.dataset.row = String(i);
      const r = rows[i];
      visible.forEach((j) => {
        const c = columns[j];
        const v = r[j];
        const td = h("td");
        td.dataset.col = c.name;
        if (v === null || v === undefined) {
          td.textContent = "–";
          td.className = "lpw-table-na";
          td.title = "missing";
        } else if (c.kind === "number" && typeof v === "number") {
          td.textContent = fmt(v, c.decimals ?? 3);
          td.className = "lpw-table-num lpw-mono";
          td.title = String(v);
          const lo = compactView && c.ci ? columns.findIndex((x) => x.name === c.ci[0]) : -1;
          const hi = compactView && c.ci ? columns.findIndex((x) => x.name === c.ci[1]) : -1;
          if (lo >= 0 && hi >= 0 && typeof r[lo] === "number" && typeof r[hi] === "number") {
            const d = c.decimals ?? 3;
            td.append(h("span", "lpw-table-ci", ` [${fmt(r[lo], d)}, ${fmt(r[hi], d)}]`));
            td.title = `${v} (95% interval ${r[lo]} to ${r[hi]})`;
          }
        } else {
          td.textContent = String(v);
        }
        if (best[j] && best[j].has(i)) {
          td.classList.add("lpw-table-best");
          td.title = `${td.title || String(v)} (best ${c.name})`;
        }
        tr.appendChild(td);
      });
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    more.hidden = shown >= order.length;
    more.textContent = `Show more (${order.length - shown} hidden)`;
    count.textContent = `${rows.length} row${rows.length === 1 ? "" : "s"}`;
  }

  function redraw() {
    load();
    drawHead();
    drawBody();
  }

  const onData = () => redraw();
  const keys = ["columns", "rows", "sort", "title", "filename", "max_height", "show_all"];
  for (const k of keys) model.on("change:" + k, onData);
  redraw();

  model.on("msg:custom", onMsg);
  return () => {
    model.off("msg:custom", onMsg);
    for (const k of keys) model.off("change:" + k, onData);
    clearTimeout(toastTimer);
  };
}

export default { render };
