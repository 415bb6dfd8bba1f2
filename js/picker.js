// Submodule picker (anywidget ESM, no dependencies, no build step).
//
// Model state:   tree     [{name, type, depth, parent, shape, runs}] in pre-order
//                groups   [{pattern, members}]  "all layers' X" shortcuts
//                selected ["transformer.h.3.mlp.output", ...]  (synced both ways)
//                height   px of the scrolling list
// Rows are virtualised (fixed height, only the visible window is in the DOM), so
// trees with thousands of modules filter and scroll without delay. All text goes
// in through textContent / setAttribute: module names are never parsed as HTML.

import { h, button, listen } from "./shared.js";

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
  return "[" + dims.join(", ") + "]";
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
    r.lower = (r.name + " " + r.type).toLowerCase();
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
    row.title = r.name + ".output";
  }

  const nameCell = h("span", "lpw-picker-col-name");
  nameCell.style.paddingLeft = (query ? 0 : r.depth * 14) + "px";
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
  row.append(nameCell,
             h("span", "lpw-picker-col-type", r.type),
             shapeCell(r.shape));
  return row;
}

function shapeCell(shape) {
  const cell = h("span", "lpw-picker-col-shape lpw-mono", formatShape(shape));
  if (Array.isArray(shape)) cell.title = `output shape in a dry run: [${shape.join(", ")}]`;
  return cell;
}

function render({ model, el }) {
  const root = h("div", "lpw lpw-picker");
  el.appendChild(root);

  // ---- state ------------------------------------------------------------------
  let rows = [];          // tree rows, each extended with index/hasChildren/lower
  let byName = new Map(); // name -> row
  let visible = [];       // rows currently listed (after collapse / filter)
  let collapsed = new Set();
  let query = "";
  let selected = new Set();
  let anchor = null;      // name of the last plainly clicked row, for shift ranges
  let cursor = null;      // name of the keyboard-focused row

  // ---- DOM skeleton -----------------------------------------------------------
  const toolbar = h("div", "lpw-toolbar");
  const search = h("input", "lpw-input lpw-picker-search");
  search.type = "search";
  search.placeholder = "Filter submodules (substring)…";
  search.setAttribute("aria-label", "Filter submodules");
  const expandAll = button("Expand all", "Show every submodule", () => {
    collapsed = new Set();
    refresh();
  });
  const collapseAll = button("Collapse all", "Show only the top level", () => {
    collapsed = new Set(rows.filter((r) => r.hasChildren).map((r) => r.name));
    refresh();
  });
  const selectMatches = button("Select matches", "Add every listed submodule", () => {
    const add = visible.filter(selectable).map((r) => r.name);
    setSelection(addNames(add));
  });
  const clear = button("Clear", "Empty the selection", () => setSelection(new Set()));
  toolbar.append(search, expandAll, collapseAll, selectMatches, clear);

  const groupBar = h("div", "lpw-toolbar lpw-picker-groups");
  const groupLabel = h("span", "lpw-muted", "In every layer:");
  const groupSelect = h("select", "lpw-select lpw-picker-group-select");
  groupSelect.setAttribute("aria-label", "Submodule to select in every layer");
  const groupAdd = button("Add", "Select this submodule in every layer", () => {
    const g = currentGroup();
    if (g) setSelection(addNames(g.members));
  });
  groupAdd.classList.add("lpw-picker-group-add");
  const groupRemove = button("Remove", "Deselect this submodule in every layer", () => {
    const g = currentGroup();
    if (!g) return;
    const next = new Set(selected);
    for (const m of g.members) {
      next.delete(m + ".output");
      next.delete(m + ".input");
    }
    setSelection(next);
  });
  groupRemove.classList.add("lpw-picker-group-remove");
  groupBar.append(groupLabel, groupSelect, groupAdd, groupRemove);

  const header = h("div", "lpw-picker-header");
  header.append(h("span", "lpw-picker-col-name", "Submodule"),
                h("span", "lpw-picker-col-type", "Class"),
                h("span", "lpw-picker-col-shape", "Output shape"));

  const scroller = h("div", "lpw-picker-scroll");
  scroller.setAttribute("role", "listbox");
  scroller.setAttribute("aria-multiselectable", "true");
  scroller.tabIndex = 0;
  const spacer = h("div", "lpw-picker-spacer");
  scroller.appendChild(spacer);
  const empty = h("div", "lpw-picker-empty lpw-muted", "No submodule matches the filter.");

  const status = h("div", "lpw-picker-status lpw-muted");
  const chips = h("div", "lpw-picker-chips");

  root.append(toolbar, groupBar, header, scroller, empty, status, chips);

  // ---- helpers ----------------------------------------------------------------
  function selectable(r) {
    return r.runs !== false;
  }
  function isSelected(r) {
    return selected.has(r.name + ".output") || selected.has(r.name + ".input");
  }
  function addNames(names) {
    const next = new Set(selected);
    for (const n of names) {
      const r = byName.get(n);
      if (r && selectable(r) && !isSelected(r)) next.add(n + ".output");
    }
    return next;
  }
  function order(item) {
    const base = item.replace(/\.(output|input)$/, "");
    const r = byName.get(base);
    return r ? r.index : Number.MAX_SAFE_INTEGER;
  }
  function setSelection(next) {
    const list = Array.from(next).sort((a, b) => order(a) - order(b));
    selected = new Set(list);
    model.set("selected", list);
    model.save_changes();
    draw();
  }
  function currentGroup() {
    const groups = model.get("groups") || [];
    return groups[Number(groupSelect.value)] || null;
  }

  // ---- data -> derived state ----------------------------------------------------
  function loadTree() {
    ({ rows, byName } = parseTree(model.get("tree") || []));
    // Big trees start folded below the block level; small ones fully open.
    collapsed = new Set(
      rows.length > 300 ? rows.filter((r) => r.hasChildren && r.depth >= 2).map((r) => r.name) : []
    );
  }

  function loadGroups() {
    const groups = model.get("groups") || [];
    groupSelect.replaceChildren();
    groups.forEach((g, i) => {
      const opt = h("option", null, `${g.pattern} (${g.members.length})`);
      opt.value = String(i);
      groupSelect.appendChild(opt);
    });
    groupBar.hidden = groups.length === 0;
  }

  function loadSelection() {
    selected = new Set(model.get("selected") || []);
  }

  function computeVisible() {
    if (query) {
      visible = rows.filter((r) => r.lower.includes(query));
      return;
    }
    visible = [];
    let hideBelow = Infinity; // depth of a collapsed ancestor, while inside it
    for (const r of rows) {
      if (r.depth > hideBelow) continue;
      hideBelow = Infinity;
      visible.push(r);
      if (r.hasChildren && collapsed.has(r.name)) hideBelow = r.depth;
    }
  }

  // ---- drawing ----------------------------------------------------------------
  let lastWindow = "";
  function drawRows(force) {
    const viewH = scroller.clientHeight || model.get("height") || 360;
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_H) - OVERSCAN);
    const last = Math.min(visible.length, first + Math.ceil(viewH / ROW_H) + 2 * OVERSCAN);
    const key = first + ":" + last;
    if (!force && key === lastWindow) return;
    lastWindow = key;
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) {
      const r = visible[i];
      const el = rowElement(r, { sel: isSelected(r), cursor, query, collapsed });
      el.style.top = i * ROW_H + "px";
      el.dataset.pos = String(i);
      frag.appendChild(el);
    }
    spacer.replaceChildren(frag);
  }

  function drawStatus() {
    const nSel = selected.size;
    let text = `${nSel} selected · ${rows.length} submodules`;
    if (query) text += ` · ${visible.length} match${visible.length === 1 ? "" : "es"}`;
    status.textContent = text;
    chips.replaceChildren();
    const list = Array.from(selected);
    for (const item of list.slice(0, CHIP_LIMIT)) {
      const chip = h("span", "lpw-picker-chip lpw-mono");
      chip.dataset.item = item;
      chip.appendChild(h("span", null, item));
      const x = h("button", "lpw-picker-chip-x", "×");
      x.type = "button";
      x.setAttribute("aria-label", "Remove " + item);
      x.addEventListener("click", () => {
        const next = new Set(selected);
        next.delete(item);
        setSelection(next);
      });
      chip.appendChild(x);
      chips.appendChild(chip);
    }
    if (list.length > CHIP_LIMIT) {
      chips.appendChild(h("span", "lpw-muted", `+${list.length - CHIP_LIMIT} more`));
    }
    selectMatches.disabled = !query || visible.length === 0;
  }

  function draw() {
    spacer.style.height = visible.length * ROW_H + "px";
    empty.hidden = visible.length > 0;
    drawRows(true);
    drawStatus();
  }

  function refresh() {
    computeVisible();
    draw();
  }

  // ---- events -----------------------------------------------------------------
  scroller.style.height = (model.get("height") || 360) + "px";
  let scrollPending = false;
  scroller.addEventListener("scroll", () => {
    if (scrollPending) return;
    scrollPending = true;
    requestAnimationFrame(() => {
      scrollPending = false;
      drawRows(false);
    });
  });

  search.addEventListener("input", () => {
    query = search.value.trim().toLowerCase();
    scroller.scrollTop = 0;
    refresh();
  });

  spacer.addEventListener("click", (ev) => {
    const rowEl = ev.target.closest(".lpw-picker-row");
    if (!rowEl || !spacer.contains(rowEl)) return;
    const r = byName.get(rowEl.dataset.name);
    if (!r) return;
    if (ev.target.closest("[data-action=toggle]") || (!selectable(r) && r.hasChildren)) {
      if (collapsed.has(r.name)) collapsed.delete(r.name);
      else collapsed.add(r.name);
      refresh();
      return;
    }
    cursor = r.name;
    activate(r, ev.shiftKey);
  });

  // Toggle one row, or with `range` add every row from the anchor to it.
  function activate(r, range) {
    if (!selectable(r)) return;
    if (range && anchor !== null) {
      const a = visible.findIndex((v) => v.name === anchor);
      const b = visible.indexOf(r);
      if (a >= 0 && b >= 0) {
        const [lo, hi] = a < b ? [a, b] : [b, a];
        setSelection(addNames(visible.slice(lo, hi + 1).filter(selectable).map((v) => v.name)));
        return;
      }
    }
    anchor = r.name;
    const next = new Set(selected);
    if (isSelected(r)) {
      next.delete(r.name + ".output");
      next.delete(r.name + ".input");
    } else {
      next.add(r.name + ".output");
    }
    setSelection(next);
  }

  // Keyboard: arrows move, Space/Enter toggle (Shift: range), Right/Left open/close.
  scroller.addEventListener("keydown", (ev) => {
    if (visible.length === 0) return;
    let pos = visible.findIndex((v) => v.name === cursor);
    const r = pos >= 0 ? visible[pos] : null;
    const page = Math.max(1, Math.floor(scroller.clientHeight / ROW_H) - 1);
    const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (ev.key in moves) {
      pos = pos < 0 ? 0 : Math.min(visible.length - 1, Math.max(0, pos + moves[ev.key]));
    } else if (ev.key === "Home") {
      pos = 0;
    } else if (ev.key === "End") {
      pos = visible.length - 1;
    } else if ((ev.key === " " || ev.key === "Enter") && r) {
      ev.preventDefault();
      activate(r, ev.shiftKey);
      return;
    } else if ((ev.key === "ArrowRight" || ev.key === "ArrowLeft") && r && r.hasChildren && !query) {
      ev.preventDefault();
      if (ev.key === "ArrowRight") collapsed.delete(r.name);
      else collapsed.add(r.name);
      refresh();
      return;
    } else {
      return;
    }
    ev.preventDefault();
    cursor = visible[pos].name;
    const top = pos * ROW_H;
    if (top < scroller.scrollTop) scroller.scrollTop = top;
    else if (top + ROW_H > scroller.scrollTop + scroller.clientHeight) {
      scroller.scrollTop = top + ROW_H - scroller.clientHeight;
    }
    drawRows(true);
  });
  // Shift-click would otherwise select the page's text.
  spacer.addEventListener("mousedown", (ev) => {
    if (ev.shiftKey) ev.preventDefault();
  });

  const onTree = () => {
    loadTree();
    anchor = null;
    refresh();
  };
  const onGroups = () => loadGroups();
  const onSelected = () => {
    loadSelection();
    draw();
  };
  const onHeight = () => {
    scroller.style.height = (model.get("height") || 360) + "px";
    drawRows(true);
  };
  const unlisten = listen(model, {
    "change:tree": onTree,
    "change:groups": onGroups,
    "change:selected": onSelected,
    "change:height": onHeight,
  });

  loadTree();
  loadGroups();
  loadSelection();
  refresh();

  return unlisten;
}

export default { render };
