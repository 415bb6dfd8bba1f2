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

// js/picker.js
var ROW_H = 24;
var OVERSCAN = 8;
var CHIP_LIMIT = 60;
function formatShape(shape) {
  if (!Array.isArray(shape)) return "";
  const dims = shape.map((d, i) => {
    if (i === 0 && d === 1) return "B";
    if (i === 1 && d === 2 && shape.length >= 3) return "T";
    return String(d);
  });
  return `[${dims.join(", ")}]`;
}
function parseTree(tree) {
  const rows = tree.map((r, i) => ({
    name: String(r.name),
    type: r.type == null ? "" : String(r.type),
    depth: Number(r.depth) || 0,
    parent: r.parent == null ? "" : String(r.parent),
    shape: r.shape,
    runs: r.runs,
    index: i,
    hasChildren: false
  }));
  const byName = new Map(rows.map((r) => [r.name, r]));
  for (const r of rows) {
    const p = byName.get(r.parent);
    if (p) p.hasChildren = true;
    r.lower = `${r.name} ${r.type}`.toLowerCase();
  }
  return { rows, byName };
}
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
function newPicker(model) {
  return {
    model,
    rows: [],
    // tree rows, each extended with index/hasChildren/lower
    byName: /* @__PURE__ */ new Map(),
    // name -> row
    visible: [],
    // rows currently listed (after collapse / filter)
    collapsed: /* @__PURE__ */ new Set(),
    query: "",
    selected: /* @__PURE__ */ new Set(),
    anchor: null,
    // name of the last plainly clicked row, for shift ranges
    cursor: null,
    // name of the keyboard-focused row
    lastWindow: "",
    // "first:last" of the rows in the DOM
    scrollPending: false
  };
}
function selectable(r) {
  return r.runs !== false;
}
function isSelected(p, r) {
  return p.selected.has(`${r.name}.output`) || p.selected.has(`${r.name}.input`);
}
function addNames(p, names) {
  const next = new Set(p.selected);
  for (const n of names) {
    const r = p.byName.get(n);
    if (r && selectable(r) && !isSelected(p, r)) next.add(`${n}.output`);
  }
  return next;
}
function deleteModule(set, name) {
  set.delete(`${name}.output`);
  set.delete(`${name}.input`);
}
function order(p, item) {
  const base = item.replace(/\.(output|input)$/, "");
  const r = p.byName.get(base);
  return r ? r.index : Number.MAX_SAFE_INTEGER;
}
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
          p.visible.slice(lo, hi + 1).filter(selectable).map((v) => v.name)
        )
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
function buildToolbar(p) {
  const toolbar = h("div", "lpw-toolbar");
  const search = h("input", "lpw-input lpw-picker-search");
  search.type = "search";
  search.placeholder = "Filter submodules (substring)…";
  search.setAttribute("aria-label", "Filter submodules");
  const expandAll = button("Expand all", "Show every submodule", () => {
    p.collapsed = /* @__PURE__ */ new Set();
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
        p.visible.filter(selectable).map((r) => r.name)
      )
    );
  });
  const clear = button("Clear", "Empty the selection", () => setSelection(p, /* @__PURE__ */ new Set()));
  toolbar.append(search, expandAll, collapseAll, selectMatches, clear);
  p.search = search;
  p.selectMatches = selectMatches;
  return toolbar;
}
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
    h("span", "lpw-picker-col-shape", "Output shape")
  );
  return header;
}
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
function loadTree(p) {
  ({ rows: p.rows, byName: p.byName } = parseTree(p.model.get("tree") || []));
  p.collapsed = new Set(
    p.rows.length > 300 ? p.rows.filter((r) => r.hasChildren && r.depth >= 2).map((r) => r.name) : []
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
  let hideBelow = Infinity;
  for (const r of p.rows) {
    if (r.depth > hideBelow) continue;
    hideBelow = Infinity;
    p.visible.push(r);
    if (r.hasChildren && p.collapsed.has(r.name)) hideBelow = r.depth;
  }
}
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
function onRowClick(p, ev) {
  const rowEl = ev.target.closest(".lpw-picker-row");
  if (!rowEl || !p.spacer.contains(rowEl)) return;
  const r = p.byName.get(rowEl.dataset.name);
  if (!r) return;
  if (ev.target.closest("[data-action=toggle]") || !selectable(r) && r.hasChildren) {
    if (p.collapsed.has(r.name)) p.collapsed.delete(r.name);
    else p.collapsed.add(r.name);
    refresh(p);
    return;
  }
  p.cursor = r.name;
  activate(p, r, ev.shiftKey);
}
function movedPosition(p, key, pos) {
  const last = p.visible.length - 1;
  const page = Math.max(1, Math.floor(p.scroller.clientHeight / ROW_H) - 1);
  const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
  if (key in moves) return pos < 0 ? 0 : Math.min(last, Math.max(0, pos + moves[key]));
  if (key === "Home") return 0;
  if (key === "End") return last;
  return null;
}
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
  p.spacer.addEventListener("mousedown", (ev) => {
    if (ev.shiftKey) ev.preventDefault();
  });
}
function applyHeight(p) {
  p.scroller.style.height = `${p.model.get("height") || 360}px`;
}
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
    }
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
    p.chips
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
var picker_default = { render };
export {
  picker_default as default
};
