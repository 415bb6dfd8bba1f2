"""Probe families inside the fit plan (`ProbeConfig(kind=...)`, core.engine.families):
one `fit_probes` call fits linear, MLP, k-sparse and attention probes side by side;
each family gives what it gives fitted alone on the same rows (the plan's splits,
seed and validation split); a stop before or inside the final fit resumes to the
uninterrupted result; a failed family fit changes nothing; save and load keep every
probe's predictions; the control task fits each family at its own capacity; bad
family options are refused when the config is made."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from synthetic import sentiment_texts

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine import events as ev
from lm_probe_widgets.core.engine import modeling
from lm_probe_widgets.core.engine.families import FamilyProbe, family_inputs
from lm_probe_widgets.core.engine.family_models import AttentionProbe, MLPProbe, Stopping
from lm_probe_widgets.core.engine.plan import scored_labels
from lm_probe_widgets.core.engine.sparse_model import SparseModel, rank_dimensions
from lm_probe_widgets.core.errors import ProbeError
from lm_probe_widgets.display.columns import format_number

H0, H1 = "transformer.h.0.output", "transformer.h.1.output"
KW = dict(num_epoch=2, batch_size=16, progress=None, bootstrap=50)
NAMES = ("lin", "mlp", "sparse", "att")


def _configs() -> list[ProbeConfig]:
    return [
        ProbeConfig(H1, name="lin"),
        ProbeConfig(H1, name="mlp", kind="mlp", hidden=8, max_steps=60),
        ProbeConfig(H0, name="sparse", kind="sparse", k=4, l2=(1e-2, 1.0)),
        ProbeConfig(H1, name="att", kind="attention", heads=2, max_steps=40),
    ]


@pytest.fixture(scope="module")
def data(tiny):
    model, tok = tiny
    texts, labels = sentiment_texts(72, seed=2)
    train, test = ProbeDataset.from_texts(texts, labels, tok).tt_split(0.25, seed=0)
    return model, train, test


@pytest.fixture(scope="module")
def fitted(data):
    """The mixed sweep, fitted uninterrupted in one call, with its control task."""
    model, train, test = data
    return ProbeRunner(model, _configs()).fit_probes(train, test, control=True, **KW)


def _rows(runner, cfg, ds):
    """The rows a probe of `cfg` reads from `ds` (texts for attention), float64, and
    their class indices."""
    x = np.asarray(runner.features(ds, [cfg.feature_key])[cfg.feature_key], dtype=np.float64)
    keep, y = scored_labels(cfg, ds)
    return family_inputs(cfg, x, keep, ds), y


def _probas(runner, ds, rows_of) -> dict[str, np.ndarray]:
    """Every probe's `predict_proba` on the rows `rows_of` (a runner) reads: the same
    features for the runners compared (padding of other batches moves float bits)."""
    return {c.name: runner[c.name].predict_proba(_rows(rows_of, c, ds)[0]) for c in runner.configs}


def _stopping(cfg) -> Stopping:
    return Stopping(cfg.patience, cfg.eval_every, cfg.warmup_steps, cfg.threshold)


def _sparse_reference(x, y, xv, yv, xt, cfg, cv=True) -> tuple[float, np.ndarray, np.ndarray]:
    """scikit-learn on the top-k dimensions (C = 1 / (n l2)), the strength with the
    lowest log-loss kept: with `cv`, the mean held-out one over seeded stratified
    folds of the training + validation rows (ranking redone on each fold's training
    rows), refitted on all of them; else the validation one, fitted on training rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(xa, ya, l2):
        top = rank_dimensions(xa, ya, cfg.rank_by)[: cfg.k]
        c = 1 / (len(ya) * l2)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        return top, model.fit(xa[:, top], ya)

    def loss(fitted, xh, yh):
        top, model = fitted
        return log_loss(yh, model.predict_proba(xh[:, top]), labels=[0, 1])

    if cv:
        x, y = np.concatenate([x, xv]), np.concatenate([y, yv])
        folds = list(StratifiedKFold(cfg.cv_folds, shuffle=True, random_state=cfg.seed).split(x, y))
        scores = {l2: np.mean([loss(fit(x[a], y[a], l2), x[b], y[b]) for a, b in folds])
                  for l2 in cfg.l2}  # fmt: skip
    else:
        scores = {l2: loss(fit(x, y, l2), xv, yv) for l2 in cfg.l2}
    l2 = min(scores, key=scores.get)
    top, model = fit(x, y, l2)
    return l2, top, model.predict_proba(xt[:, top])


def test_a_mixed_sweep_fits_each_family_as_it_would_alone(fitted):
    runner, plan = fitted, fitted.last_plan
    m = runner.metrics
    assert m["kind"].tolist() == ["linear", "mlp", "sparse", "attention"]
    assert m["state"].isin(["finished", "early-stopped"]).all()
    assert m["accuracy"].notna().all() and m["accuracy_low"].notna().all()
    for name in NAMES[1:]:
        cfg = next(c for c in runner.configs if c.name == name)
        x, y = _rows(runner, cfg, plan.train)
        xv, yv = _rows(runner, cfg, plan.val)
        xt, yt = _rows(runner, cfg, plan.eval_set)
        if name == "sparse":  # its strength by 5-fold CV, as a linear probe's
            l2, top, expected = _sparse_reference(x, y, xv, yv, xt, cfg)
            assert runner[name].record.best_l2 == l2 and runner[name].record.cross_validated
            assert runner[name].dims.tolist() == top.tolist()
            alone = SparseModel(cfg.k, cfg.rank_by, cfg.l2).fit(x, y, 2, (xv, yv))  # cv_folds=0
            l2_val, top_val, on_val = _sparse_reference(x, y, xv, yv, xt, cfg, cv=False)
            assert alone.best_l2 == l2_val and alone.dims.tolist() == top_val.tolist()
            np.testing.assert_allclose(np.exp(alone.log_proba(xt)), on_val, atol=1e-6)
        else:
            alone = (
                MLPProbe(8, 1e-2, lr=1e-2, steps=60, seed=0)
                if name == "mlp"
                else AttentionProbe(2, 1e-3, lr=1e-2, steps=40, seed=0)
            )
            alone.fit(x, y, 2, val=(xv, yv), stopping=_stopping(cfg))
            expected = alone.predict_proba(xt)
            assert runner[name].record.steps == alone.trace.steps
            assert runner[name].record.best_step == alone.trace.best_step
        np.testing.assert_allclose(runner[name].predict_proba(xt), expected, atol=1e-6)
        assert m.loc[name, "accuracy"] == pytest.approx(np.mean(expected.argmax(1) == yt))
        assert runner[name].predict(xt).tolist() == expected.argmax(1).tolist()
    # the control task at the same capacity: the same family and options, relabelled
    for name in NAMES[1:]:
        mine = next(c for c in runner.configs if c.name == name)
        theirs = next(c for c in runner.control.configs if c.name == name)
        assert theirs.to_dict() == mine.to_dict()
        assert isinstance(runner.control[name], FamilyProbe) and runner.control[name].fitted
    np.testing.assert_allclose(m["selectivity"], m["accuracy"] - m["control_accuracy"])
    # the layer sweep draws one line per family (its legend says which)
    from lm_probe_widgets.display.sweep_plot import series_reads

    assert series_reads(m).tolist() == [
        "mean", "mlp probe, mean pooling", "sparse probe, mean pooling", "attention probe"
    ]  # fmt: skip
    made = runner.compare("att", "lin")  # paired over the same test texts
    assert made.a_score == pytest.approx(m.loc["att", "accuracy"])
    assert made.b_score == pytest.approx(m.loc["lin", "accuracy"])


def _stopper(runner, kind, probe):
    def on(e):
        if e.kind == kind and (probe is None or e.probe == probe or e.data.get("phase") == probe):
            runner.request_stop()

    return runner.events.subscribe(on)


@pytest.mark.parametrize(
    ("kind", "probe", "waiting"),
    [
        (ev.BATCH, "extract-train", {"mlp", "sparse", "att"}),  # before the final fit
        (ev.REFINED, "lin", {"mlp", "sparse", "att"}),  # inside the MLP's fit
        (ev.PROBE_FINISHED, "sparse", {"att"}),  # between two families
    ],
)
def test_a_stop_then_resume_gives_the_uninterrupted_result(data, fitted, kind, probe, waiting):
    model, train, test = data
    runner = ProbeRunner(model, _configs())
    unsubscribe = _stopper(runner, kind, probe)
    runner.fit_probes(train, test, **KW)
    unsubscribe()
    assert str(runner.state) == "stopped"
    assert {n for n in NAMES if not getattr(runner[n], "fitted", True)} == waiting
    for name in waiting:  # waiting: no steps, no curve, no metrics row
        assert runner.metrics.loc[name, "state"] == "not fitted"
        assert runner[name].record.history == [] and name not in runner.last_result.metrics
    assert set(runner.score(test).index) == set(NAMES) - waiting  # the fitted ones
    runner.fit_probes(train, test, resume=True, **KW)
    assert str(runner.state) == "fitted"
    want, got = _probas(fitted, test, fitted), _probas(runner, test, fitted)
    for name in NAMES:
        np.testing.assert_allclose(got[name], want[name], atol=1e-6, err_msg=name)
    mine, theirs = runner.metrics, fitted.metrics
    assert mine[["steps", "state"]].equals(theirs[["steps", "state"]])
    np.testing.assert_allclose(mine[["accuracy", "val_loss"]], theirs[["accuracy", "val_loss"]])


def test_the_torch_engine_fits_the_families_on_its_device_as_numpy_does(data, fitted, monkeypatch):
    """Under the torch engine (`modeling.stack_device` patched to CPU tensors, as on a GPU)
    the torch families read their training and validation rows as tensors on the probe
    device, where the feature cache keeps them, and fit what the numpy engine fits."""
    model, train, test = data
    seen = {}

    def spy(cls):
        original = cls.fit

        def fit(self, x, y, n_classes=None, *, val=None, stopping=None):
            first = x if cls is MLPProbe else x[0]  # rows, or the first text's rows
            val_first = val[0] if cls is MLPProbe else val[0][0]
            seen[cls.__name__] = {type(first), type(val_first), first.device, val_first.device}
            return original(self, x, y, n_classes, val=val, stopping=stopping)

        monkeypatch.setattr(cls, "fit", fit)

    spy(MLPProbe), spy(AttentionProbe)
    monkeypatch.setattr(modeling, "stack_device", lambda _: torch.device("cpu"))
    runner = ProbeRunner(model, _configs(), store=False).fit_probes(train, test, **KW)
    assert seen == {k: {torch.Tensor, torch.device("cpu")} for k in ("MLPProbe", "AttentionProbe")}
    want, got = _probas(fitted, test, fitted), _probas(runner, test, fitted)
    for name in NAMES:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5, err_msg=name)
    mine, theirs = runner.metrics, fitted.metrics
    assert mine[["steps", "best_step", "state"]].equals(theirs[["steps", "best_step", "state"]])


# A pool of every family on two sites, small enough to fit many times (each fit is a
# fraction of a second on the tiny model).
POOL = {
    f"{kind}{i}": ProbeConfig(f"transformer.h.{i}.output", name=f"{kind}{i}", **options)
    for i in (0, 1)
    for kind, options in (
        ("lin", {"max_steps": 20, "l2": (1e-2, 1e-1)}),
        ("mlp", {"kind": "mlp", "hidden": 4, "max_steps": 15}),
        ("sparse", {"kind": "sparse", "k": 3, "l2": (1e-1,)}),
        ("att", {"kind": "attention", "max_steps": 15}),
    )
}
POOL_KW = dict(num_epoch=1, batch_size=16, progress=None, bootstrap=0)


@pytest.fixture(scope="module")
def alone(data):
    """Each pool probe's test predictions, fitted on its own (and the test rows)."""
    model, train, test = data
    probas = {}
    for name, cfg in POOL.items():
        runner = ProbeRunner(model, [cfg], store=False).fit_probes(train, test, **POOL_KW)
        probas[name] = runner[name].predict_proba(_rows(runner, runner[name].config, test)[0])
    return probas


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    names=st.lists(st.sampled_from(sorted(POOL)), min_size=1, max_size=len(POOL), unique=True),
    stop_at=st.floats(0.0, 1.0),
)
@example(names=["att0", "att1"], stop_at=0.5)  # resumed: one site's test token rows stored
def test_probes_fitted_together_in_any_order_fit_as_alone_and_resume_to_it(
    data, alone, names, stop_at
):
    """Any subset of the pool, in any order, fitted in one plan: each probe predicts
    what it predicts fitted alone (families to the bit, linear ones, solved in shared
    stacks, to float rounding); stopped at any event and resumed, the same again."""
    model, train, test = data
    configs = [POOL[n] for n in names]
    seen = []
    together = ProbeRunner(model, configs, store=False)
    unsubscribe = together.events.subscribe(seen.append)
    together.fit_probes(train, test, **POOL_KW)
    unsubscribe()
    stopped = ProbeRunner(model, configs, store=False)
    at = int(stop_at * (len(seen) - 1))
    count = iter(range(len(seen)))
    unsubscribe = stopped.events.subscribe(lambda e: next(count) == at and stopped.request_stop())
    stopped.fit_probes(train, test, **POOL_KW)
    unsubscribe()
    if str(stopped.state) == "stopped":
        stopped.fit_probes(train, test, resume=True, **POOL_KW)
    assert str(together.state) == str(stopped.state) == "fitted"
    for name in names:
        x = _rows(together, together[name].config, test)[0]
        got = together[name].predict_proba(x)
        exact = POOL[name].kind != "linear"
        np.testing.assert_allclose(got, alone[name], rtol=0, atol=0 if exact else 1e-5)
        np.testing.assert_allclose(stopped[name].predict_proba(x), got, atol=1e-6, err_msg=name)


def test_a_failed_family_fit_changes_nothing(data, monkeypatch):
    model, train, test = data
    runner = ProbeRunner(model, _configs())
    unsubscribe = _stopper(runner, ev.PROBE_FINISHED, "mlp")
    runner.fit_probes(train, test, **KW)  # stopped with sparse and att waiting
    unsubscribe()
    before = runner.metrics.copy()
    records = {n: vars(runner[n].record).copy() for n in NAMES}
    probas = {n: runner[n].predict_proba(_rows(runner, runner[n].config, test)[0])
              for n in ("lin", "mlp")}  # fmt: skip

    def broken(self, *args, **kwargs):
        raise RuntimeError("a family fit failed")

    # the sparse probe is fitted first, then the attention probe's fit fails
    monkeypatch.setattr("lm_probe_widgets.core.engine.family_models.AttentionProbe.fit", broken)
    with pytest.raises(RuntimeError, match="family fit failed"):
        runner.fit_probes(train, test, resume=True, **KW)
    assert str(runner.state) == "stopped"
    assert not runner["sparse"].fitted and not runner["att"].fitted
    assert runner.metrics.equals(before)
    assert {n: vars(runner[n].record) for n in NAMES} == records
    for name, proba in probas.items():
        got = runner[name].predict_proba(_rows(runner, runner[name].config, test)[0])
        np.testing.assert_array_equal(got, proba)


def test_save_then_load_keeps_every_familys_predictions(data, fitted, tmp_path):
    model, _, test = data
    path = tmp_path / "mixed.safetensors"
    fitted.save(path)
    loaded = ProbeRunner.load(path, model)
    assert [c.to_dict() for c in loaded.configs] == [c.to_dict() for c in fitted.configs]
    want, got = _probas(fitted, test, fitted), _probas(loaded, test, fitted)
    for name in NAMES:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert loaded.metrics["kind"].tolist() == fitted.metrics["kind"].tolist()
    assert loaded["sparse"].dims.tolist() == fitted["sparse"].dims.tolist()
    with pytest.raises(ProbeError, match="no single weight direction"):
        loaded["mlp"].direction()
    html = loaded["mlp"]._repr_html_()
    assert "MLP probe" in html and "mlp (hidden=8, weight_decay=0.01)" in html


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "tree"}, "kind 'tree' is not one of"),
        ({"hidden": 8}, "hidden= is an option of kind=mlp"),
        ({"kind": "sparse", "heads": 2}, "heads= is an option of kind=attention"),
        ({"kind": "mlp", "hidden": -1}, "hidden must be an integer >= 0"),
        ({"kind": "sparse", "k": 0}, "k must be an integer >= 1"),
        ({"kind": "sparse", "rank_by": "size"}, "rank_by 'size'"),
        ({"kind": "mlp", "weight_decay": -1.0}, "weight_decay must be a number >= 0"),
        ({"kind": "attention", "pooling": "mean"}, "leave pooling unset"),
        ({"kind": "mlp", "task": "regression"}, "probes classify"),
        ({"kind": "sparse", "refine": False}, "refine=False has nothing to keep"),
    ],
)
def test_bad_family_options_are_refused_when_the_config_is_made(kwargs, match):
    with pytest.raises(ProbeError, match=match):
        ProbeConfig(H1, **kwargs)


def test_a_sparse_k_beyond_the_sites_width_is_refused_before_any_fit(tiny):
    with pytest.raises(ProbeError, match="k=33 is more than the width 32"):
        ProbeRunner(tiny[0], [ProbeConfig(H1, kind="sparse", k=33)])


def test_linear_configs_and_their_saved_form_are_unchanged():
    cfg = ProbeConfig(H1, classes=[0, 1])
    assert "kind" not in cfg.to_dict() and cfg.kind == "linear"
    attention = ProbeConfig(H1, kind="attention")
    assert attention.feature_key == ("transformer.h.1", "output", "none")
    assert not attention.token_level  # token rows in, one label per example out
    assert ProbeConfig(**attention.to_dict()) == attention


def test_the_playground_scores_every_family_and_shows_where_attention_read(fitted):
    """Every family gets its strip cell; an attention probe's tokens carry its weights
    (each head's sum to 1 over the text), coloured by their mean from none at 0 to full
    at the largest, with a legend and hover text saying so, live and in the snapshot."""
    import re

    from lm_probe_widgets.widgets import ProbePlayground
    from lm_probe_widgets.widgets.playground_view import weight_colour

    text = "a good film, <b>really</b>"
    pg = ProbePlayground(fitted, text=text, probe="att")
    result = pg.result
    by_name = {p["name"]: p for p in result["probes"]}
    assert pg.error == "" and set(by_name) == set(NAMES)
    for name in NAMES:
        assert sum(by_name[name]["proba"]) == pytest.approx(1.0)
    for name in ("lin", "mlp", "sparse"):  # a score per token of the text
        assert len(by_name[name]["token_logits"]) == len(result["tokens"])
    att = by_name["att"]
    one = ProbeDataset.from_texts([text], None, fitted.model.tokenizer)
    key = fitted["att"].config.feature_key
    expected = fitted["att"].token_weights([fitted.features(one, [key])[key]])[0]
    weights = np.array(att["token_weights"])
    assert weights.shape == (len(result["tokens"]), 2)
    np.testing.assert_allclose(weights.sum(0), [1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    mean = np.array(att["token_weight"])
    np.testing.assert_allclose(mean, weights.mean(1))
    # the colours follow the weights: stronger for a larger one, full at the largest
    strength = [int(re.search(r" (\d+)%", c[0]).group(1)) for c in att["token_colours"]]
    assert [strength[i] for i in np.argsort(mean)] == sorted(strength)
    assert att["token_colours"][int(mean.argmax())][0] == weight_colour(1.0, 1.0)
    assert weight_colour(0.0, mean.max()) == "" and att["scale"] == [pytest.approx(mean.max())]
    assert att["legend_label"] == "attention weight (mean over 2 heads)"
    # the snapshot (and the text summary) say the same, escaped
    page, top = pg.snapshot_html(), format_number(mean.max())
    assert f'attention weight (mean over 2 heads) <span class="lpw-muted">(0 to {top})' in page
    assert "<b>really" not in page and "&lt;b&gt;really" in page
    i = int(mean.argmax())
    tip = f"attention weight {format_number(mean[i])} (heads: "
    assert tip in page and f"background: {att['token_colours'][i][0]}" in page
    assert "tokens (att, attention weight (mean over 2 heads)):" in pg.summary()


def test_family_early_stopping_keeps_the_best_evaluation_and_stops_after_patience():
    import torch

    from lm_probe_widgets.core.engine.family_models import AdamW, train

    net = torch.nn.Linear(3, 2)
    opt = AdamW(net.parameters(), lr=1e-2, weight_decay=0.0)
    x = torch.ones(4, 3)
    losses = iter([3.0, 2.0, 1.0, 1.5, 2.5, 0.99995, 4.0, 5.0, 6.0, 7.0])  # best at step 3
    kept = {}

    def val_loss():
        v = next(losses)
        if v == 1.0:
            kept.update({k: t.clone() for k, t in net.state_dict().items()})
        return v

    stopping = Stopping(patience=3, eval_every=1, warmup=0, threshold=1e-4)
    trace = train(net, opt, 10, lambda: net(x).sum(), val_loss, stopping)
    # 0.99995 is no improvement by more than the threshold: patience runs out at step 6
    assert (trace.steps, trace.best_step, trace.stopped_early) == (6, 3, True)
    assert trace.best_val_loss == 1.0 and [h["step"] for h in trace.history] == [1, 2, 3, 4, 5, 6]
    for k, t in net.state_dict().items():
        torch.testing.assert_close(t, kept[k], rtol=0, atol=0)
