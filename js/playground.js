// Probe playground (anywidget ESM, no dependencies, no build step).
//
// Model state:  text         the sentence (synced back, debounced by debounce_ms while typing)
//               result       {text, tokens: [{id, text, raw}], skipped: [name], truncated,
//                             heat_legend, probes: [{name, submodule, layer, pooling,
//                                       classes, proba, top, token_logits, token_margin,
//                                       scale, note, strip_colour, bar_colours,
//                                       token_colours}]}
//                            an attention probe's entry: heat "attention", heads,
//                            token_weights [token][head], token_weight (their mean,
//                            what the colour shows), scale [largest], legend,
//                            legend_label, token_colours [token][0]; no token scores
//                            -- computed in Python (widgets/playground_view.py), colours
//                            included; this view only lays it out
//               error        a Python-side failure's message ("" when none)
//               probe        the heatmap's probe (synced back)
//               target       the heatmap's class ("" = the last class; synced back)
//               debounce_ms, note
// Custom message to Python: {type: "commit"} when focus leaves the widget, so the
// static snapshot in the output can catch up without re-rendering the view mid-typing.
// Every value is written with textContent: nothing from the data is parsed as HTML.

import { fmt, h, hideStaticCopies, listen } from "./shared.js";

function signed(v) {
  const s = fmt(v);
  return typeof v === "number" && v > 0 ? `+${s}` : s;
}

// Calls fn(value) once, `wait` ms after the last call; flush() runs a pending call now.
export function debounce(fn, wait) {
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

// One probe's cell in the strip: its top class, probability and per-class bars;
// clicking it calls choose(name).
function probeCell(p, choose) {
  const c = h("div", "lpw-pg-cell");
  c.dataset.probe = p.name;
  const layer = p.layer === null || p.layer === undefined ? "" : ` · layer ${p.layer}`;
  c.append(h("div", "lpw-pg-layer", p.name + layer));
  let lines;
  if (p.task === "regression") {
    // a regression probe: its predicted value (no class, no probability)
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
  // the full name on hover (the cell may cut it off)
  c.title =
    `${p.name} (${p.submodule}, ${p.pooling} pooling)\n${lines.join("\n")}` +
    (p.note ? `\n${p.note}` : "");
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

// Options `values` in a <select> (rebuilt only when they changed), `current` chosen.
function fillSelect(sel, values, current) {
  const same =
    sel.options.length === values.length && values.every((v, i) => sel.options[i].value === v);
  if (!same) {
    sel.replaceChildren(
      ...values.map((v) => {
        const o = h("option", null, v);
        o.value = v;
        return o;
      }),
    );
  }
  sel.value = current;
}

// The widget's elements, built once; the draw functions below fill them from the model.
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
    v.tokNote,
  );
  v.sentText = v.input.value; // the latest text handed to Python
  return v;
}

function result(v) {
  return v.model.get("result") || {};
}

// The heatmap's probe entry: the chosen one, else the first.
function chosen(v) {
  const probes = result(v).probes || [];
  const name = v.model.get("probe");
  return probes.find((p) => p.name === name) || probes[0] || null;
}

function drawStatus(v) {
  const r = result(v);
  const n = (r.probes || []).length;
  if (v.send.pending() || ((r.text ?? "") !== v.sentText && !v.model.get("error"))) {
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

function drawStrip(v, choose) {
  const r = result(v);
  const probes = r.probes || [];
  v.strip.replaceChildren(...probes.map((p) => probeCell(p, choose)));
  v.stripHead.hidden = probes.length === 0;
  const sk = r.skipped || [];
  v.skipped.textContent = sk.length ? `not fitted (not shown): ${sk.join(", ")}` : "";
  v.skipped.hidden = sk.length === 0;
  v.trunc.hidden = !r.truncated;
  v.trunc.textContent = r.truncated
    ? `Only the first ${(r.tokens || []).length} tokens are read.`
    : "";
}

// The heatmap's legend for probe entry `p`, class `ci`: its range and what the colours mean.
function drawLegend(v, p, ci) {
  if (p.heat === "attention") {
    // an attention probe: no colour at weight 0, full colour at the text's largest
    const top = (p.scale || [])[0] || 0;
    const bar = h("span", "lpw-pg-legend-bar");
    bar.style.background = p.legend || "";
    bar.title = `attention weight: none at 0, full at ${fmt(top)} (this text's largest)`;
    v.legend.replaceChildren(
      h("span", "lpw-pg-legend-lo lpw-mono", "0"),
      bar,
      h("span", "lpw-pg-legend-hi lpw-mono", fmt(top)),
      h("span", "lpw-muted lpw-pg-small", ` ${p.legend_label || "attention weight"}`),
    );
    return;
  }
  const scale = (p.scale || [])[ci] || 0;
  const regression = p.task === "regression";
  const centre = regression ? Number(p.center) || 0 : 0;
  const bar = h("span", "lpw-pg-legend-bar");
  bar.style.background = result(v).heat_legend || "";
  bar.title = regression
    ? `blue: below the training mean ${fmt(centre)}, red: above it`
    : `blue: against ${p.classes[ci]}, red: toward ${p.classes[ci]}`;
  v.legend.replaceChildren(
    h("span", "lpw-pg-legend-lo lpw-mono", regression ? fmt(centre - scale) : signed(-scale)),
    bar,
    h("span", "lpw-pg-legend-hi lpw-mono", regression ? fmt(centre + scale) : signed(scale)),
    h(
      "span",
      "lpw-muted lpw-pg-small",
      regression ? " predicted value" : ` toward ${p.classes[ci]}`,
    ),
  );
}

// Token `t` (position i) coloured for probe entry `p`, class `ci`, its scores on hover.
function tokenSpan(p, t, i, ci) {
  if (p.heat === "attention") {
    // its weight on this token (the mean over heads), each head's on hover
    const w = (p.token_weight || [])[i];
    const heads = (p.token_weights || [])[i] || [];
    const s = h("span", "lpw-pg-token", t.text);
    s.dataset.index = String(i);
    s.dataset.score = typeof w === "number" ? String(w) : "";
    s.style.background = ((p.token_colours || [])[i] || [])[0] || "";
    s.title =
      `${JSON.stringify(t.raw)} (id ${t.id}): attention weight ${fmt(w)}` +
      (heads.length > 1 ? `\nper head: ${heads.map((x) => fmt(x)).join(", ")}` : "");
    return s;
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
    s.title =
      `${JSON.stringify(t.raw)} (id ${t.id}): ${signed(v)} toward ${p.classes[ci]}\n` +
      `logits: ${parts.join(", ")}`;
  }
  return s;
}

function drawTokens(v) {
  const r = result(v);
  const p = chosen(v);
  const toks = r.tokens || [];
  v.tokHead.hidden = !p;
  // the token-score note is about scores; an attention probe's note says what it shows
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
    p.name,
  );
  const target = v.model.get("target") || "";
  const ci = p.classes.includes(target) ? p.classes.indexOf(target) : p.classes.length - 1;
  fillSelect(v.classSel, p.classes, p.classes[ci]);
  v.classLabel.hidden = p.heat === "attention"; // its weights are the same for every class
  drawLegend(v, p, ci);
  v.tokens.dataset.probe = p.name;
  v.tokens.dataset.class = p.classes[ci];
  v.tokens.replaceChildren(...toks.map((t, i) => tokenSpan(p, t, i, ci)));
  v.probeNote.textContent =
    `${p.name}: ${p.submodule}, trained on ${p.pooling}-pooled features` +
    (p.note ? `; ${p.note}` : "");
}

// Set trait `key` from the browser and redraw the heatmap.
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
    Math.max(0, Number(model.get("debounce_ms") ?? 300)),
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
    // a change made in Python: show it unless the user is typing something newer
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
    "change:note": onChoice,
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

export default { render };
