// Built by `npm run build` from js/ (esbuild); edit js/, not this file.

// js/shared.js
function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== void 0 && text !== null) el.textContent = String(text);
  return el;
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

// js/playground.js
function signed(v) {
  const s = fmt(v);
  return typeof v === "number" && v > 0 ? `+${s}` : s;
}
function debounce(fn, wait) {
  let timer = null;
  let last = null;
  const run = () => {
    timer = null;
    fn(last);
  };
  const call = (value) => {
    last = value;
    clearTimeout(timer);
    timer = setTimeout(run, wait);
  };
  call.pending = () => timer !== null;
  call.flush = () => {
    if (timer !== null) {
      clearTimeout(timer);
      run();
    }
  };
  call.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return call;
}
function probeCell(p, choose2) {
  const c = h("div", "lpw-pg-cell");
  c.dataset.probe = p.name;
  const layer = p.layer === null || p.layer === void 0 ? "" : ` · layer ${p.layer}`;
  c.append(h("div", "lpw-pg-layer", p.name + layer));
  let lines;
  if (p.task === "regression") {
    c.dataset.task = "regression";
    c.append(h("div", "lpw-pg-class", "predicted"));
    c.append(h("div", "lpw-pg-prob lpw-mono", fmt(p.value)));
    lines = [`predicted value: ${fmt(p.value)}`];
  } else {
    const top = p.top;
    const prob = p.proba[top];
    c.dataset.class = p.classes[top];
    c.style.background = p.strip_colour || "";
    c.append(h("div", "lpw-pg-class", p.classes[top]));
    c.append(h("div", "lpw-pg-prob lpw-mono", fmt(prob)));
    const bars = h("div", "lpw-pg-bars");
    p.classes.forEach((name, j) => {
      const b = h("span", "lpw-pg-bar");
      b.style.height = `${Math.round(100 * Math.max(0, Math.min(1, p.proba[j] || 0)))}%`;
      b.style.background = (p.bar_colours || [])[j] || "";
      b.title = `${name}: ${fmt(p.proba[j])}`;
      bars.appendChild(b);
    });
    c.appendChild(bars);
    lines = p.classes.map((name, j) => `${name}: ${fmt(p.proba[j])}`);
  }
  c.title = `${p.name} (${p.submodule}, ${p.pooling} pooling)
${lines.join("\n")}` + (p.note ? `
${p.note}` : "");
  c.tabIndex = 0;
  c.setAttribute("role", "button");
  c.addEventListener("click", () => choose2(p.name));
  c.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      choose2(p.name);
    }
  });
  return c;
}
function fillSelect(sel, values, current) {
  const same = sel.options.length === values.length && values.every((v, i) => sel.options[i].value === v);
  if (!same) {
    sel.replaceChildren(
      ...values.map((v) => {
        const o = h("option", null, v);
        o.value = v;
        return o;
      })
    );
  }
  sel.value = current;
}
function buildView(model) {
  const v = { model, root: h("div", "lpw lpw-live lpw-playground") };
  const head = h("div", "lpw-toolbar");
  v.status = h("span", "lpw-muted lpw-pg-status");
  v.status.setAttribute("role", "status");
  head.append(h("span", "lpw-pg-title", "Probe playground"), v.status);
  v.input = h("textarea", "lpw-input lpw-pg-input");
  v.input.rows = 2;
  v.input.spellcheck = false;
  v.input.placeholder = "Type or paste a sentence";
  v.input.setAttribute("aria-label", "Sentence for the probes");
  v.input.value = model.get("text") || "";
  v.error = h("div", "lpw-pg-error");
  v.error.setAttribute("role", "alert");
  v.stripHead = h("div", "lpw-pg-section", "Every probe's prediction, along the layers");
  v.strip = h("div", "lpw-pg-strip");
  v.skipped = h("div", "lpw-muted lpw-pg-small lpw-pg-skipped");
  v.trunc = h("div", "lpw-muted lpw-pg-small lpw-pg-truncated");
  v.tokHead = h("div", "lpw-toolbar lpw-pg-tokhead");
  const probeLabel = h("label", "lpw-pg-label", "Probe ");
  v.probeSel = h("select", "lpw-select lpw-pg-probe");
  probeLabel.appendChild(v.probeSel);
  v.classLabel = h("label", "lpw-pg-label", "class ");
  v.classSel = h("select", "lpw-select lpw-pg-class");
  v.classLabel.appendChild(v.classSel);
  v.legend = h("span", "lpw-pg-legend");
  v.tokHead.append(probeLabel, v.classLabel, v.legend);
  v.tokens = h("div", "lpw-pg-tokens");
  v.tokNote = h("div", "lpw-muted lpw-pg-small lpw-pg-note");
  v.probeNote = h("div", "lpw-muted lpw-pg-small lpw-pg-probenote");
  v.root.append(
    head,
    v.input,
    v.error,
    v.stripHead,
    v.strip,
    v.skipped,
    v.tokHead,
    v.tokens,
    v.trunc,
    v.probeNote,
    v.tokNote
  );
  v.sentText = v.input.value;
  return v;
}
function result(v) {
  return v.model.get("result") || {};
}
function chosen(v) {
  const probes = result(v).probes || [];
  const name = v.model.get("probe");
  return probes.find((p) => p.name === name) || probes[0] || null;
}
function drawStatus(v) {
  const r = result(v);
  const n = (r.probes || []).length;
  if (v.send.pending() || (r.text ?? "") !== v.sentText && !v.model.get("error")) {
    v.status.textContent = "updating…";
    v.root.dataset.busy = "true";
  } else {
    v.status.textContent = n ? `${n} probe${n === 1 ? "" : "s"}` : "";
    delete v.root.dataset.busy;
  }
}
function drawError(v) {
  const msg = v.model.get("error") || "";
  v.error.textContent = msg;
  v.error.hidden = !msg;
}
function drawStrip(v, choose2) {
  const r = result(v);
  const probes = r.probes || [];
  v.strip.replaceChildren(...probes.map((p) => probeCell(p, choose2)));
  v.stripHead.hidden = probes.length === 0;
  const sk = r.skipped || [];
  v.skipped.textContent = sk.length ? `not fitted (not shown): ${sk.join(", ")}` : "";
  v.skipped.hidden = sk.length === 0;
  v.trunc.hidden = !r.truncated;
  v.trunc.textContent = r.truncated ? `Only the first ${(r.tokens || []).length} tokens are read.` : "";
}
function drawLegend(v, p, ci) {
  if (p.heat === "attention") {
    const top = (p.scale || [])[0] || 0;
    const bar2 = h("span", "lpw-pg-legend-bar");
    bar2.style.background = p.legend || "";
    bar2.title = `attention weight: none at 0, full at ${fmt(top)} (this text's largest)`;
    v.legend.replaceChildren(
      h("span", "lpw-pg-legend-lo lpw-mono", "0"),
      bar2,
      h("span", "lpw-pg-legend-hi lpw-mono", fmt(top)),
      h("span", "lpw-muted lpw-pg-small", ` ${p.legend_label || "attention weight"}`)
    );
    return;
  }
  const scale = (p.scale || [])[ci] || 0;
  const regression = p.task === "regression";
  const centre = regression ? Number(p.center) || 0 : 0;
  const bar = h("span", "lpw-pg-legend-bar");
  bar.style.background = result(v).heat_legend || "";
  bar.title = regression ? `blue: below the training mean ${fmt(centre)}, red: above it` : `blue: against ${p.classes[ci]}, red: toward ${p.classes[ci]}`;
  v.legend.replaceChildren(
    h("span", "lpw-pg-legend-lo lpw-mono", regression ? fmt(centre - scale) : signed(-scale)),
    bar,
    h("span", "lpw-pg-legend-hi lpw-mono", regression ? fmt(centre + scale) : signed(scale)),
    h(
      "span",
      "lpw-muted lpw-pg-small",
      regression ? " predicted value" : ` toward ${p.classes[ci]}`
    )
  );
}
function tokenSpan(p, t, i, ci) {
  if (p.heat === "attention") {
    const w = (p.token_weight || [])[i];
    const heads = (p.token_weights || [])[i] || [];
    const s2 = h("span", "lpw-pg-token", t.text);
    s2.dataset.index = String(i);
    s2.dataset.score = typeof w === "number" ? String(w) : "";
    s2.style.background = ((p.token_colours || [])[i] || [])[0] || "";
    s2.title = `${JSON.stringify(t.raw)} (id ${t.id}): attention weight ${fmt(w)}` + (heads.length > 1 ? `
per head: ${heads.map((x) => fmt(x)).join(", ")}` : "");
    return s2;
  }
  const v = ((p.token_margin || [])[i] || [])[ci];
  const logits = (p.token_logits || [])[i] || [];
  const s = h("span", "lpw-pg-token", t.text);
  s.dataset.index = String(i);
  s.dataset.score = typeof v === "number" ? String(v) : "";
  s.style.background = ((p.token_colours || [])[i] || [])[ci] || "";
  if (p.task === "regression") {
    s.title = `${JSON.stringify(t.raw)} (id ${t.id}): predicted ${fmt(logits[0])}`;
  } else {
    const parts = p.classes.map((c, j) => `${c} ${fmt(logits[j])}`);
    s.title = `${JSON.stringify(t.raw)} (id ${t.id}): ${signed(v)} toward ${p.classes[ci]}
logits: ${parts.join(", ")}`;
  }
  return s;
}
function drawTokens(v) {
  const r = result(v);
  const p = chosen(v);
  const toks = r.tokens || [];
  v.tokHead.hidden = !p;
  v.tokNote.hidden = !p || toks.length === 0 || p.heat === "attention";
  v.tokNote.textContent = v.model.get("note") || "";
  for (const c of v.strip.children)
    c.classList.toggle("lpw-pg-chosen", !!p && c.dataset.probe === p.name);
  if (!p) {
    v.tokens.replaceChildren();
    v.probeNote.textContent = "";
    return;
  }
  fillSelect(
    v.probeSel,
    (r.probes || []).map((q) => q.name),
    p.name
  );
  const target = v.model.get("target") || "";
  const ci = p.classes.includes(target) ? p.classes.indexOf(target) : p.classes.length - 1;
  fillSelect(v.classSel, p.classes, p.classes[ci]);
  v.classLabel.hidden = p.heat === "attention";
  drawLegend(v, p, ci);
  v.tokens.dataset.probe = p.name;
  v.tokens.dataset.class = p.classes[ci];
  v.tokens.replaceChildren(...toks.map((t, i) => tokenSpan(p, t, i, ci)));
  v.probeNote.textContent = `${p.name}: ${p.submodule}, trained on ${p.pooling}-pooled features` + (p.note ? `; ${p.note}` : "");
}
function choose(v, key, value) {
  v.model.set(key, value);
  v.model.save_changes();
  drawTokens(v);
}
function render({ model, el }) {
  const v = buildView(model);
  el.appendChild(v.root);
  v.send = debounce(
    (value) => {
      v.sentText = value;
      model.set("text", value);
      model.save_changes();
      drawStatus(v);
    },
    Math.max(0, Number(model.get("debounce_ms") ?? 300))
  );
  const onInput = () => {
    v.send(v.input.value);
    drawStatus(v);
  };
  const onFocusOut = (ev) => {
    if (ev.relatedTarget && v.root.contains(ev.relatedTarget)) return;
    v.send.flush();
    model.send({ type: "commit" });
  };
  const pick = (name) => choose(v, "probe", name);
  v.input.addEventListener("input", onInput);
  v.root.addEventListener("focusout", onFocusOut);
  v.probeSel.addEventListener("change", () => choose(v, "probe", v.probeSel.value));
  v.classSel.addEventListener("change", () => choose(v, "target", v.classSel.value));
  const drawAll = () => {
    drawError(v);
    drawStrip(v, pick);
    drawTokens(v);
    drawStatus(v);
  };
  const onText = () => {
    const text = model.get("text") || "";
    if (!v.send.pending() && text !== v.input.value) v.input.value = text;
    if (!v.send.pending()) v.sentText = text;
    drawStatus(v);
  };
  const onChoice = () => drawTokens(v);
  const unlisten = listen(model, {
    "change:text": onText,
    "change:result": drawAll,
    "change:error": drawAll,
    "change:probe": onChoice,
    "change:target": onChoice,
    "change:note": onChoice
  });
  drawAll();
  const unhide = hideStaticCopies(model, v.root);
  return () => {
    unhide();
    v.send.cancel();
    v.input.removeEventListener("input", onInput);
    v.root.removeEventListener("focusout", onFocusOut);
    unlisten();
  };
}
var playground_default = { render };
export {
  debounce,
  playground_default as default
};
