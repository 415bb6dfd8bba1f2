// Submodule picker (anywidget ESM, no dependencies, no build step).
//
// Model state:   tree     [{name, type, depth, parent, shape, runs}] in pre-order
//                groups   [{pattern, members}]  "all layers' X" shortcuts
//                selected ["transformer.h.3.mlp.output", ...]  (synced both ways)
//                height   px of the scrolling list
// Rows are virtualised (fixed height, only the visible window is in the DOM), so
// trees with thousands of modules filter and scroll without delay. All text goes
// in through textContent / setAttribute: module names are never parsed as HTML.

import { button, h, hideStaticCopies, listen } from "./shared.js";

const ROW_H = 24;
const OVERSCAN = 8;
const CHIP_LIMIT = 60;

// The dry run feeds 1 sequence of 2 tokens: show those dims as B and T so the
// width stands out ([B, T, 768]); the raw shape stays in the cell's tooltip.
function formatShape(shape) {
  if (!Array.isArray(shape)) return "";
  const dims = shape.map((d, i) => {
    if (i === 0 && d === 1) return "B";
    if (i === 1 && d === 2 && shape.length >= 3) return "T";
    return String(d);
  });
  return `[${dims.join(", ")}]`;
}

// Tree rows from the model, each with its index, hasChildren and a lower-case search key.
function parseTree(tree) {
  const rows = tree.map((r, i) => ({
    name: String(r.name),
    type: r.type == null ? "" : String(r.type),
    depth: Number(r.depth) || 0,
    parent: r.parent == null ? "" : String(r.parent),
    shape: r.shape,
    runs: r.runs,
    index: i,
    hasChildren: false,
  }));
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const r of rows) {
    const p = byName.get(r.parent);
    if (p) p.hasChildren = true;
    r.lower = `${r.name} ${r.type}`.toLowerCase();
  }
  return { rows, byName };
}

// One listed submodule. `view`: {sel (is it selected), cursor, query, collapsed}.
function rowElement(r, view) {
  const { sel, cursor, query, collapsed } = view;
  const row = h("div", "lpw-picker-row");
  row.setAttribute("role", "option");
  row.dataset.name = r.name;
  row.setAttribute("aria-selected", sel ? "true" : "false");
  if (sel) row.classList.add("lpw-picker-selected");
  if (r.name === cursor) row.classList.add("lpw-picker-cursor");
  if (r.runs === false) {
    row.classList.add("lpw-picker-dead");
    row.title = `${r.name} (never runs in a forward pass)`;
  } else {
    row.title = `${r.name}.output`;
  }

  const nameCell = h("span", "lpw-picker-col-name");
  nameCell.style.paddingLeft = `${query ? 0 : r.depth * 14}px`;
  if (!query && r.hasChildren) {
    const caret = h("button", "lpw-picker-caret", collapsed.has(r.name) ? "▸" : "▾");
    caret.type = "button";
    caret.tabIndex = -1;
    caret.setAttribute("aria-label", collapsed.has(r.name) ? "Expand" : "Collapse");
    caret.dataset.action = "toggle";
    nameCell.appendChild(caret);
  } else {
    nameCell.appendChild(h("span", "lpw-picker-caret lpw-picker-caret-blank", ""));
  }
  const box = h("span", "lpw-picker-check", sel ? "☑" : "☐");
  box.setAttribute("aria-hidden", "true");
  nameCell.appendChild(box);
  const label = query ? r.name : r.name.slice(r.parent ? r.parent.length + 1 : 0);
  nameCell.appendChild(h("span", "lpw-picker-label", label));
  row.append(nameCell, h("span", "lpw-picker-col-type", r.type), shapeCell(r.shape));
  return row;
}

function shapeCell(shape) {
  const cell = h("span", "lpw-picker-col-shape lpw-mono", formatShape(shape));
  if (Array.isArray(shape)) cell.title = `output shape in a dry run: [${shape.join(", ")}]`;
  return cell;
}

// ---- the picker's state ---------------------------------------------------------
// render keeps one object `p` with the model, the derived state and the elements the
// functions below read or redraw; each function takes it first.
function newPicker(model) {
  return {
    model,
    rows: [], // tree rows, each extended with index/hasChildren/lower
    byName: new Map(), // name -> row
    visible: [], // rows currently listed (after collapse / filter)
    collapsed: new Set(),
    query: "",
    selected: new Set(),
    anchor: null, // name of the last plainly clicked row, for shift ranges
    cursor: null, // name of the keyboard-focused row
    lastWindow: "", // "first:last" of the rows in the DOM
    scrollPending: false,
  };
}

// ---- selection ------------------------------------------------------------------
function selectable(r) {
  return r.runs !== false;
}

function isSelected(p, r) {
  return p.selected.has(`${r.name}.output`) || p.selected.has(`${r.name}.input`);
}

// The selection plus each named (selectable, not yet selected) module's output.
function addNames(p, names) {
  const next = new Set(p.selected);
  for (const n of names) {
    const r = p.byName.get(n);
    if (r && selectable(r) && !isSelected(p, r)) next.add(`${n}.output`);
  }
  return next;
}

// Drop a module's output and input from `set`.
function deleteModule(set, name) {
  set.delete(`${name}.output`);
  set.delete(`${name}.input`);
}

// Position in the tree of a selected item ("name.output"), for sorting.
function order(p, item) {
  const base = item.replace(/\.(output|input)$/, "");
  const r = p.byName.get(base);
  return r ? r.index : Number.MAX_SAFE_INTEGER;
}

// Store `next` (in tree order) locally and in the model, and redraw.
function setSelection(p, next) {
  const list = Array.from(next).sort((a, b) => order(p, a) - order(p, b));
  p.selected = new Set(list);
  p.model.set("selected", list);
  p.model.save_changes();
  draw(p);
}

function currentGroup(p) {
  const groups = p.model.get("groups") || [];
  return groups[Number(p.groupSelect.value)] || null;
}

// Toggle one row, or with `range` add every row from the anchor to it.
function activate(p, r, range) {
  if (!selectable(r)) return;
  if (range && p.anchor !== null) {
    const a = p.visible.findIndex((v) => v.name === p.anchor);
    const b = p.visible.indexOf(r);
    if (a >= 0 && b >= 0) {
      const [lo, hi] = a < b ? [a, b] : [b, a];
      setSelection(
        p,
        addNames(
          p,
          p.visible
            .slice(lo, hi + 1)
            .filter(selectable)
            .map((v) => v.name),
        ),
      );
      return;
    }
  }
  p.anchor = r.name;
  const next = new Set(p.selected);
  if (isSelected(p, r)) deleteModule(next, r.name);
  else next.add(`${r.name}.output`);
  setSelection(p, next);
}

// ---- DOM skeleton -----------------------------------------------------------------
// Filter box and the expand / collapse / select / clear buttons.
function buildToolbar(p) {
  const toolbar = h("div", "lpw-toolbar");
  const search = h("input", "lpw-input lpw-picker-search");
  search.type = "search";
  search.placeholder = "Filter submodules (substring)…";
  search.setAttribute("aria-label", "Filter submodules");
  const expandAll = button("Expand all", "Show every submodule", () => {
    p.collapsed = new Set();
    refresh(p);
  });
  const collapseAll = button("Collapse all", "Show only the top level", () => {
    p.collapsed = new Set(p.rows.filter((r) => r.hasChildren).map((r) => r.name));
    refresh(p);
  });
  const selectMatches = button("Select matches", "Add every listed submodule", () => {
    setSelection(
      p,
      addNames(
        p,
        p.visible.filter(selectable).map((r) => r.name),
      ),
    );
  });
  const clear = button("Clear", "Empty the selection", () => setSelection(p, new Set()));
  toolbar.append(search, expandAll, collapseAll, selectMatches, clear);
  p.search = search;
  p.selectMatches = selectMatches;
  return toolbar;
}

// "In every layer:" a group shortcut and its Add / Remove buttons.
function buildGroupBar(p) {
  const groupBar = h("div", "lpw-toolbar lpw-picker-groups");
  const groupLabel = h("span", "lpw-muted", "In every layer:");
  const groupSelect = h("select", "lpw-select lpw-picker-group-select");
  groupSelect.setAttribute("aria-label", "Submodule to select in every layer");
  const groupAdd = button("Add", "Select this submodule in every layer", () => {
    const g = currentGroup(p);
    if (g) setSelection(p, addNames(p, g.members));
  });
  groupAdd.classList.add("lpw-picker-group-add");
  const groupRemove = button("Remove", "Deselect this submodule in every layer", () => {
    const g = currentGroup(p);
    if (!g) return;
    const next = new Set(p.selected);
    for (const m of g.members) deleteModule(next, m);
    setSelection(p, next);
  });
  groupRemove.classList.add("lpw-picker-group-remove");
  groupBar.append(groupLabel, groupSelect, groupAdd, groupRemove);
  p.groupBar = groupBar;
  p.groupSelect = groupSelect;
  return groupBar;
}

function buildHeader() {
  const header = h("div", "lpw-picker-header");
  header.append(
    h("span", "lpw-picker-col-name", "Submodule"),
    h("span", "lpw-picker-col-type", "Class"),
    h("span", "lpw-picker-col-shape", "Output shape"),
  );
  return header;
}

// The scrolling listbox; rows go in its spacer, which is as tall as every row.
function buildList(p) {
  const scroller = h("div", "lpw-picker-scroll");
  scroller.setAttribute("role", "listbox");
  scroller.setAttribute("aria-multiselectable", "true");
  scroller.tabIndex = 0;
  const spacer = h("div", "lpw-picker-spacer");
  scroller.appendChild(spacer);
  p.scroller = scroller;
  p.spacer = spacer;
  return scroller;
}

// ---- data -> derived state ----------------------------------------------------------
function loadTree(p) {
  ({ rows: p.rows, byName: p.byName } = parseTree(p.model.get("tree") || []));
  // Big trees start folded below the block level; small ones fully open.
  p.collapsed = new Set(
    p.rows.length > 300
      ? p.rows.filter((r) => r.hasChildren && r.depth >= 2).map((r) => r.name)
      : [],
  );
}

function loadGroups(p) {
  const groups = p.model.get("groups") || [];
  p.groupSelect.replaceChildren();
  groups.forEach((g, i) => {
    const opt = h("option", null, `${g.pattern} (${g.members.length})`);
    opt.value = String(i);
    p.groupSelect.appendChild(opt);
  });
  p.groupBar.hidden = groups.length === 0;
}

function loadSelection(p) {
  p.selected = new Set(p.model.get("selected") || []);
}

function computeVisible(p) {
  if (p.query) {
    p.visible = p.rows.filter((r) => r.lower.includes(p.query));
    return;
  }
  p.visible = [];
  let hideBelow = Infinity; // depth of a collapsed ancestor, while inside it
  for (const r of p.rows) {
    if (r.depth > hideBelow) continue;
    hideBelow = Infinity;
    p.visible.push(r);
    if (r.hasChildren && p.collapsed.has(r.name)) hideBelow = r.depth;
  }
}

// ---- drawing ----------------------------------------------------------------------
// The rows in (and near) the scrolled window; unless `force`, only when it moved.
function drawRows(p, force) {
  const { scroller, visible } = p;
  const viewH = scroller.clientHeight || p.model.get("height") || 360;
  const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_H) - OVERSCAN);
  const last = Math.min(visible.length, first + Math.ceil(viewH / ROW_H) + 2 * OVERSCAN);
  const key = `${first}:${last}`;
  if (!force && key === p.lastWindow) return;
  p.lastWindow = key;
  const view = { cursor: p.cursor, query: p.query, collapsed: p.collapsed };
  const frag = document.createDocumentFragment();
  for (let i = first; i < last; i++) {
    const r = visible[i];
    const el = rowElement(r, { sel: isSelected(p, r), ...view });
    el.style.top = `${i * ROW_H}px`;
    el.dataset.pos = String(i);
    frag.appendChild(el);
  }
  p.spacer.replaceChildren(frag);
}

// One selected item, with a button that removes it.
function chipElement(p, item) {
  const chip = h("span", "lpw-picker-chip lpw-mono");
  chip.dataset.item = item;
  chip.appendChild(h("span", null, item));
  const x = h("button", "lpw-picker-chip-x", "×");
  x.type = "button";
  x.setAttribute("aria-label", `Remove ${item}`);
  x.addEventListener("click", () => {
    const next = new Set(p.selected);
    next.delete(item);
    setSelection(p, next);
  });
  chip.appendChild(x);
  return chip;
}

// The counts line, the chips of the selection and whether "Select matches" applies.
function drawStatus(p) {
  const { visible, query } = p;
  let text = `${p.selected.size} selected · ${p.rows.length} submodules`;
  if (query) text += ` · ${visible.length} match${visible.length === 1 ? "" : "es"}`;
  p.status.textContent = text;
  p.chips.replaceChildren();
  const list = Array.from(p.selected);
  for (const item of list.slice(0, CHIP_LIMIT)) p.chips.appendChild(chipElement(p, item));
  if (list.length > CHIP_LIMIT) {
    p.chips.appendChild(h("span", "lpw-muted", `+${list.length - CHIP_LIMIT} more`));
  }
  p.selectMatches.disabled = !query || visible.length === 0;
}

function draw(p) {
  p.spacer.style.height = `${p.visible.length * ROW_H}px`;
  p.empty.hidden = p.visible.length > 0;
  drawRows(p, true);
  drawStatus(p);
}

function refresh(p) {
  computeVisible(p);
  draw(p);
}

// ---- events -------------------------------------------------------------------------
function onScroll(p) {
  if (p.scrollPending) return;
  p.scrollPending = true;
  requestAnimationFrame(() => {
    p.scrollPending = false;
    drawRows(p, false);
  });
}

function onSearch(p) {
  p.query = p.search.value.trim().toLowerCase();
  p.scroller.scrollTop = 0;
  refresh(p);
}

// A click on a caret (or on a module that never runs but has children) opens or
// closes it; on any other row it toggles the row (Shift: the range from the anchor).
function onRowClick(p, ev) {
  const rowEl = ev.target.closest(".lpw-picker-row");
  if (!rowEl || !p.spacer.contains(rowEl)) return;
  const r = p.byName.get(rowEl.dataset.name);
  if (!r) return;
  if (ev.target.closest("[data-action=toggle]") || (!selectable(r) && r.hasChildren)) {
    if (p.collapsed.has(r.name)) p.collapsed.delete(r.name);
    else p.collapsed.add(r.name);
    refresh(p);
    return;
  }
  p.cursor = r.name;
  activate(p, r, ev.shiftKey);
}

// Where a navigation key moves the cursor from `pos` (-1: none yet); null: not one.
function movedPosition(p, key, pos) {
  const last = p.visible.length - 1;
  const page = Math.max(1, Math.floor(p.scroller.clientHeight / ROW_H) - 1);
  const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
  if (key in moves) return pos < 0 ? 0 : Math.min(last, Math.max(0, pos + moves[key]));
  if (key === "Home") return 0;
  if (key === "End") return last;
  return null;
}

// Put the cursor on visible row `pos`, scrolled into view.
function moveCursor(p, pos) {
  const { scroller } = p;
  p.cursor = p.visible[pos].name;
  const top = pos * ROW_H;
  if (top < scroller.scrollTop) scroller.scrollTop = top;
  else if (top + ROW_H > scroller.scrollTop + scroller.clientHeight) {
    scroller.scrollTop = top + ROW_H - scroller.clientHeight;
  }
  drawRows(p, true);
}

// Keyboard: arrows move, Space/Enter toggle (Shift: range), Right/Left open/close.
function onKeyDown(p, ev) {
  if (p.visible.length === 0) return;
  const pos = p.visible.findIndex((v) => v.name === p.cursor);
  const r = pos >= 0 ? p.visible[pos] : null;
  if ((ev.key === " " || ev.key === "Enter") && r) {
    ev.preventDefault();
    activate(p, r, ev.shiftKey);
    return;
  }
  if ((ev.key === "ArrowRight" || ev.key === "ArrowLeft") && r && r.hasChildren && !p.query) {
    ev.preventDefault();
    if (ev.key === "ArrowRight") p.collapsed.delete(r.name);
    else p.collapsed.add(r.name);
    refresh(p);
    return;
  }
  const next = movedPosition(p, ev.key, pos);
  if (next === null) return;
  ev.preventDefault();
  moveCursor(p, next);
}

function wireEvents(p) {
  p.scroller.addEventListener("scroll", () => onScroll(p));
  p.search.addEventListener("input", () => onSearch(p));
  p.spacer.addEventListener("click", (ev) => onRowClick(p, ev));
  p.scroller.addEventListener("keydown", (ev) => onKeyDown(p, ev));
  // Shift-click would otherwise select the page's text.
  p.spacer.addEventListener("mousedown", (ev) => {
    if (ev.shiftKey) ev.preventDefault();
  });
}

function applyHeight(p) {
  p.scroller.style.height = `${p.model.get("height") || 360}px`;
}

// The kernel changed a trait.
function modelHandlers(p) {
  return {
    "change:tree": () => {
      loadTree(p);
      p.anchor = null;
      refresh(p);
    },
    "change:groups": () => loadGroups(p),
    "change:selected": () => {
      loadSelection(p);
      draw(p);
    },
    "change:height": () => {
      applyHeight(p);
      drawRows(p, true);
    },
  };
}

function render({ model, el }) {
  const root = h("div", "lpw lpw-live lpw-picker");
  el.appendChild(root);
  const p = newPicker(model);
  p.empty = h("div", "lpw-picker-empty lpw-muted", "No submodule matches the filter.");
  p.status = h("div", "lpw-picker-status lpw-muted");
  p.chips = h("div", "lpw-picker-chips");
  root.append(
    buildToolbar(p),
    buildGroupBar(p),
    buildHeader(),
    buildList(p),
    p.empty,
    p.status,
    p.chips,
  );
  applyHeight(p);
  wireEvents(p);
  const unlisten = listen(model, modelHandlers(p));

  loadTree(p);
  loadGroups(p);
  loadSelection(p);
  refresh(p);
  const unhide = hideStaticCopies(model, root);
  return () => {
    unlisten();
    unhide();
  };
}

export default { render };
