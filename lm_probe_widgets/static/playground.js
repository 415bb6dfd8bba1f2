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
function probeCell(p, choose) {
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
  c.addEventListener("click", () => choose(p.name));
  c.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      choose(p.name);
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
function render({ model, el }) {
  const root = h("div", "lpw lpw-live lpw-playground");
  el.appendChild(root);
  const head = h("div", "lpw-toolbar");
  const title = h("span", "lpw-pg-title", "Probe playground");
  const status = h("span", "lpw-muted lpw-pg-status");
  status.setAttribute("role", "status");
  head.append(title, status);
  const input = h("textarea", "lpw-input lpw-pg-input");
  input.rows = 2;
  input.spellcheck = false;
  input.placeholder = "Type or paste a sentence";
  input.setAttribute("aria-label", "Sentence for the probes");
  input.value = model.get("text") || "";
  const error = h("div", "lpw-pg-error");
  error.setAttribute("role", "alert");
  const stripHead = h("div", "lpw-pg-section", "Every probe's prediction, along the layers");
  const strip = h("div", "lpw-pg-strip");
  const skipped = h("div", "lpw-muted lpw-pg-small lpw-pg-skipped");
  const trunc = h("div", "lpw-muted lpw-pg-small lpw-pg-truncated");
  const tokHead = h("div", "lpw-toolbar lpw-pg-tokhead");
  const probeLabel = h("label", "lpw-pg-label", "Probe ");
  const probeSel = h("select", "lpw-select lpw-pg-probe");
  probeLabel.appendChild(probeSel);
  const classLabel = h("label", "lpw-pg-label", "class ");
  const classSel = h("select", "lpw-select lpw-pg-class");
  classLabel.appendChild(classSel);
  const legend = h("span", "lpw-pg-legend");
  tokHead.append(probeLabel, classLabel, legend);
  const tokens = h("div", "lpw-pg-tokens");
  const tokNote = h("div", "lpw-muted lpw-pg-small lpw-pg-note");
  const probeNote = h("div", "lpw-muted lpw-pg-small lpw-pg-probenote");
  root.append(
    head,
    input,
    error,
    stripHead,
    strip,
    skipped,
    tokHead,
    tokens,
    trunc,
    probeNote,
    tokNote
  );
  let sentText = input.value;
  const send = debounce(
    (value) => {
      sentText = value;
      model.set("text", value);
      model.save_changes();
      drawStatus();
    },
    Math.max(0, Number(model.get("debounce_ms") ?? 300))
  );
  function onInput() {
    send(input.value);
    drawStatus();
  }
  input.addEventListener("input", onInput);
  function onFocusOut(ev) {
    if (ev.relatedTarget && root.contains(ev.relatedTarget)) return;
    send.flush();
    model.send({ type: "commit" });
  }
  root.addEventListener("focusout", onFocusOut);
  function onProbe() {
    model.set("probe", probeSel.value);
    model.save_changes();
    drawTokens();
  }
  function onClass() {
    model.set("target", classSel.value);
    model.save_changes();
    drawTokens();
  }
  probeSel.addEventListener("change", onProbe);
  classSel.addEventListener("change", onClass);
  function result() {
    return model.get("result") || {};
  }
  function drawStatus() {
    const r = result();
    const n = (r.probes || []).length;
    if (send.pending() || (r.text ?? "") !== sentText && !model.get("error")) {
      status.textContent = "updating…";
      root.dataset.busy = "true";
    } else {
      status.textContent = n ? `${n} probe${n === 1 ? "" : "s"}` : "";
      delete root.dataset.busy;
    }
  }
  function drawError() {
    const msg = model.get("error") || "";
    error.textContent = msg;
    error.hidden = !msg;
  }
  function choose(name) {
    model.set("probe", name);
    model.save_changes();
    drawTokens();
  }
  function drawStrip() {
    const r = result();
    const probes = r.probes || [];
    strip.replaceChildren(...probes.map((p) => probeCell(p, choose)));
    stripHead.hidden = probes.length === 0;
    const sk = r.skipped || [];
    skipped.textContent = sk.length ? `not fitted (not shown): ${sk.join(", ")}` : "";
    skipped.hidden = sk.length === 0;
    trunc.hidden = !r.truncated;
    trunc.textContent = r.truncated ? `Only the first ${(r.tokens || []).length} tokens are read.` : "";
  }
  function chosen() {
    const probes = result().probes || [];
    const name = model.get("probe");
    return probes.find((p) => p.name === name) || probes[0] || null;
  }
  function drawTokens() {
    const r = result();
    const probes = r.probes || [];
    const p = chosen();
    const toks = r.tokens || [];
    tokHead.hidden = !p;
    tokNote.hidden = !p || toks.length === 0;
    tokNote.textContent = model.get("note") || "";
    for (const c of strip.children)
      c.classList.toggle("lpw-pg-chosen", !!p && c.dataset.probe === p.name);
    if (!p) {
      tokens.replaceChildren();
      probeNote.textContent = "";
      return;
    }
    fillSelect(
      probeSel,
      probes.map((q) => q.name),
      p.name
    );
    const target = model.get("target") || "";
    const ci = p.classes.includes(target) ? p.classes.indexOf(target) : p.classes.length - 1;
    fillSelect(classSel, p.classes, p.classes[ci]);
    const scale = (p.scale || [])[ci] || 0;
    const regression = p.task === "regression";
    const centre = regression ? Number(p.center) || 0 : 0;
    const bar = h("span", "lpw-pg-legend-bar");
    bar.style.background = r.heat_legend || "";
    legend.replaceChildren(
      h("span", "lpw-pg-legend-lo lpw-mono", regression ? fmt(centre - scale) : signed(-scale)),
      Object.assign(bar, {
        title: regression ? `blue: below the training mean ${fmt(centre)}, red: above it` : `blue: against ${p.classes[ci]}, red: toward ${p.classes[ci]}`
      }),
      h("span", "lpw-pg-legend-hi lpw-mono", regression ? fmt(centre + scale) : signed(scale)),
      h(
        "span",
        "lpw-muted lpw-pg-small",
        regression ? " predicted value" : ` toward ${p.classes[ci]}`
      )
    );
    tokens.dataset.probe = p.name;
    tokens.dataset.class = p.classes[ci];
    const spans = toks.map((t, i) => {
      const row = (p.token_margin || [])[i] || [];
      const logits = (p.token_logits || [])[i] || [];
      const v = row[ci];
      const s = h("span", "lpw-pg-token", t.text);
      s.dataset.index = String(i);
      s.dataset.score = typeof v === "number" ? String(v) : "";
      s.style.background = ((p.token_colours || [])[i] || [])[ci] || "";
      if (regression) {
        s.title = `${JSON.stringify(t.raw)} (id ${t.id}): predicted ${fmt(logits[0])}`;
      } else {
        const parts = p.classes.map((c, j) => `${c} ${fmt(logits[j])}`);
        s.title = `${JSON.stringify(t.raw)} (id ${t.id}): ${signed(v)} toward ${p.classes[ci]}
logits: ${parts.join(", ")}`;
      }
      return s;
    });
    tokens.replaceChildren(...spans);
    probeNote.textContent = `${p.name}: ${p.submodule}, trained on ${p.pooling}-pooled features` + (p.note ? `; ${p.note}` : "");
  }
  function drawAll() {
    drawError();
    drawStrip();
    drawTokens();
    drawStatus();
  }
  const onText = () => {
    const v = model.get("text") || "";
    if (!send.pending() && v !== input.value) {
      input.value = v;
    }
    if (!send.pending()) sentText = v;
    drawStatus();
  };
  const onResult = () => drawAll();
  const onChoice = () => drawTokens();
  const unlisten = listen(model, {
    "change:text": onText,
    "change:result": onResult,
    "change:error": onResult,
    "change:probe": onChoice,
    "change:target": onChoice,
    "change:note": onChoice
  });
  drawAll();
  const unhide = hideStaticCopies(model, root);
  return () => {
    unhide();
    send.cancel();
    input.removeEventListener("input", onInput);
    root.removeEventListener("focusout", onFocusOut);
    unlisten();
  };
}
var playground_default = { render };
export {
  debounce,
  playground_default as default
};
