"""The final full-batch fit (`ProbeConfig.refine`): probes end at the optimum of the
L2-regularised logistic loss, k-fold cross-validation (or the validation split, with
cv_folds=0) picks the strength, and the metrics describe the weights in use."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler

from lm_probe_widgets import ProbeConfig, ProbeDataset, ProbeRunner
from lm_probe_widgets.core.engine import events as ev
from lm_probe_widgets.core.engine.probe import LinearProbe


def _three_class_features(n=600, dim=20, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = rng.normal(0, 1.0, (3, dim))
    x = centres[y] + rng.normal(0, 2.0, (n, dim)) + 5.0  # offset and scale: the scaler matters
    x[:, 0] *= 30
    return x.astype(np.float32), y


def _online_probe(x, y, l2, steps=30, cv_folds=5, classes=(0, 1, 2)):
    cfg = ProbeConfig("m.output", list(classes), l2=l2, lr=1e-2, cv_folds=cv_folds)
    probe = LinearProbe(cfg, x.shape[1])
    probe.scaler.update(x)
    probe.scaler.frozen = True
    for i in range(steps):
        sl = slice(32 * i % len(y), 32 * i % len(y) + 32)
        probe.step(x[sl], y[sl])
    return probe


def _sklearn_cv_losses(z, y, strengths, folds, classes):
    """scikit-learn's mean held-out log-loss per strength over `folds` (its solver, fitted
    from scratch on each fold). Ours: mean cross-entropy + l2/2 |W|^2; scikit-learn's:
    C * summed cross-entropy + 1/2 |w|^2, so C = 1 / (l2 * n); with two classes our two
    softmax columns are one logit v = W1 - W0 under l2/4 |v|^2, so C = 2 / (l2 * n)."""
    scale = 2 if len(classes) == 2 else 1
    cv = []
    for strength in strengths:
        losses = []
        for tr, te in folds:
            ref = LogisticRegression(C=scale / (strength * len(tr)), tol=1e-10, max_iter=10_000)
            ref.fit(z[tr], y[tr])
            losses.append(log_loss(y[te], ref.predict_proba(z[te]), labels=list(classes)))
        cv.append(np.mean(losses))
    return cv


def test_refine_reaches_the_same_optimum_as_scikit_learn():
    x, y = _three_class_features()
    l2 = 0.05
    probe = _online_probe(x, y, (l2,))
    online = probe.predict_proba(x)
    probe.refine(x, y, tol=1e-7, max_iter=5000)
    # ours: mean cross-entropy + l2/2 |W|^2 on standardised features; scikit-learn:
    # C * summed cross-entropy + 1/2 |W|^2, so C = 1 / (l2 * n). Both leave the bias free.
    ref = LogisticRegression(C=1 / (l2 * len(y)), tol=1e-10, max_iter=10_000)
    ref.fit(StandardScaler().fit_transform(x), y)
    expected = ref.predict_proba(StandardScaler().fit(x).transform(x))
    np.testing.assert_allclose(probe.predict_proba(x), expected, atol=2e-3)
    assert np.abs(online - expected).max() > 0.01  # 30 online steps were not there yet
    assert probe.record.refined and probe.record.cross_validated
    assert math.isfinite(probe.record.refined_val_loss)


@pytest.mark.parametrize("classes", [(0, 1), (0, 1, 2)])
def test_refine_at_the_default_tolerance_reaches_the_optimum_on_correlated_features(classes):
    """Language-model features are strongly correlated (covariance eigenvalues spread
    over 1e7 on SmolLM2): plain L-BFGS stopped well short of the optimum there."""
    rng = np.random.default_rng(2)
    n, dim = 800, 60
    latent = rng.normal(0, 1, (n, 4))
    x = latent @ rng.normal(0, 3, (4, dim)) + rng.normal(0, 0.05, (n, dim))
    y = (latent @ rng.normal(0, 1, (4, len(classes)))).argmax(1)
    y = np.where(rng.random(n) < 0.1, rng.integers(0, len(classes), n), y)  # label noise
    l2 = 1e-3
    probe = _online_probe(x.astype(np.float32), y, (l2,), classes=classes, cv_folds=0)
    probe.refine(x.astype(np.float32), y)
    z = StandardScaler().fit_transform(x)
    scale = 2 if len(classes) == 2 else 1
    ref = LogisticRegression(C=scale / (l2 * n), tol=1e-12, max_iter=100_000).fit(z, y)
    np.testing.assert_allclose(probe.predict_proba(x), ref.predict_proba(z), atol=2e-3)


def test_refine_picks_the_strength_by_cross_validation_and_refits_on_all_rows():
    from sklearn.model_selection import StratifiedKFold

    x, y = _three_class_features(seed=2, n=300)
    xv, yv = x[240:], y[240:]
    strengths = (1e-4, 1e-1, 3.0)
    probe = _online_probe(x[:240], y[:240], strengths)
    probe.refine(x[:240], y[:240], xv, yv, tol=1e-7, max_iter=5000)
    # by hand: the same folds over train + validation, scikit-learn's solver
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(x, y)
    folds = list(folds)
    scaler = StandardScaler().fit(x[:240])  # the probe standardises with training stats
    z = scaler.transform(x)
    cv = _sklearn_cv_losses(z, y, strengths, folds, classes=(0, 1, 2))
    best = int(np.argmin(cv))
    assert probe.record.best_l2 == strengths[best] and probe.record.cross_validated
    assert probe.record.refined_val_loss == pytest.approx(cv[best], rel=2e-3)
    full = LogisticRegression(C=1 / (strengths[best] * len(y)), tol=1e-10, max_iter=10_000)
    full.fit(z, y)  # refitted on training + validation rows
    np.testing.assert_allclose(probe.predict_proba(x), full.predict_proba(z), atol=2e-3)


def test_refine_picks_the_strength_by_validation_loss_without_cv():
    x, y = _three_class_features(seed=1)
    xv, yv = x[400:], y[400:]
    x, y = x[:400], y[:400]
    probe = _online_probe(x, y, (1e-4, 1e-1, 10.0), cv_folds=0)
    probe.refine(x, y, xv, yv)
    losses = []
    for strength in (1e-4, 1e-1, 10.0):
        single = _online_probe(x, y, (strength,), cv_folds=0)
        single.refine(x, y)
        losses.append(log_loss(yv, single.predict_proba(xv), labels=[0, 1, 2]))
    best = int(np.argmin(losses))
    assert probe.record.best_l2 == (1e-4, 1e-1, 10.0)[best]
    assert probe.record.refined_val_loss == pytest.approx(losses[best], rel=1e-4)


def test_fitted_probes_are_refined_and_metrics_describe_them(tiny, sentiment):
    model, tok = tiny
    texts, labels = sentiment
    train, test = ProbeDataset.from_texts(texts, labels, tok, max_length=32).tt_split(0.25)
    cfgs = [
        ProbeConfig("transformer.h.1.output", [0, 1], name="refined"),
        ProbeConfig("transformer.h.1.output", [0, 1], name="online", refine=False),
    ]
    runner = ProbeRunner(model, cfgs)
    seen = []
    runner.events.subscribe(seen.append)
    runner.fit_probes(train, test, num_epoch=3, batch_size=16, progress=None)
    m = runner.metrics
    assert bool(m.loc["refined", "refined"]) and not bool(m.loc["online", "refined"])
    assert [e.probe for e in seen if e.kind == ev.REFINED] == ["refined"]
    kinds = [e.kind for e in seen]
    assert kinds.index(ev.REFINED) < max(i for i, k in enumerate(kinds) if k == ev.BATCH)
    xv = runner.get_probe_features(runner.validation_set)
    # online: val_loss is the validation loss of the weights the probe predicts with;
    # refined: the cross-validated loss of the chosen strength (the validation rows
    # are in its training data now)
    proba = runner["online"].predict_proba(xv["online"])
    assert m.loc["online", "val_loss"] == pytest.approx(
        log_loss(runner.validation_set.labels, proba, labels=[0, 1]), rel=1e-4
    )
    refined = runner["refined"].record
    assert refined.cross_validated
    assert m.loc["refined", "val_loss"] == pytest.approx(refined.refined_val_loss)
    rec = runner["online"].record
    assert m.loc["online", "val_loss"] == pytest.approx(rec.best_val_loss)


def test_cross_validation_is_not_fooled_by_a_start_that_saw_the_held_out_rows():
    """Fold fits used to start from the all-rows fit. On separable data a weak strength
    stops long before its fold optimum, so its held-out rows were still fitted and it
    scored best. Each fold must be fitted as if its held-out rows did not exist."""
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(3)
    n, dim = 100, 150  # more features than rows: separable
    y = rng.integers(0, 2, n)
    x = (rng.normal(0, 1, (n, dim)) + 0.1 * y[:, None] * rng.normal(0, 1, dim)).astype(np.float32)
    strengths = (1e-5, 1.0)
    probe = _online_probe(x, y, strengths, steps=40, classes=(0, 1))
    probe.refine(x, y)
    z = StandardScaler().fit(x).transform(x)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(x, y))
    cv = _sklearn_cv_losses(z, y, strengths, folds, classes=(0, 1))
    assert cv[0] > cv[1]  # the weak strength overfits each fold
    assert probe.record.best_l2 == 1.0
    assert probe.record.refined_val_loss == pytest.approx(cv[1], rel=2e-3)
