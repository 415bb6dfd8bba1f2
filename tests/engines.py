"""The check shared by the tests that fit on the torch engine beside the numpy one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


def assert_same_probes(a: Any, b: Any, exact: bool = False) -> None:
    """Runner `b` fitted runner `a`'s probes as `a` did: bit for bit (`exact`, same
    engine), or to float rounding (another engine)."""
    for cfg in a.configs:
        pa, pb = a[cfg.name], b[cfg.name]
        assert isinstance(pb._w, np.ndarray)  # the stacks gave their probes back
        assert pb.record.steps == pa.record.steps and pb.record.best_step == pa.record.best_step
        if exact:
            np.testing.assert_array_equal(pb.coef_, pa.coef_)
            assert pb.record.history == pa.record.history
            continue
        assert pb.record.code_length_bits == pytest.approx(pa.record.code_length_bits, rel=1e-5)
        hist_a = [h["val_loss"] for h in pa.record.history]
        np.testing.assert_allclose([h["val_loss"] for h in pb.record.history], hist_a, rtol=1e-5)
        # the final fit stops at a gradient of 1e-4: float rounding moves it about that much
        for wa, wb in ((pa.coef_, pb.coef_), (pa.intercept_, pb.intercept_)):
            assert np.abs(wb - wa).max() <= 1e-3 * np.abs(wa).max()
    cols = ["accuracy", "f1"]
    np.testing.assert_allclose(b.metrics[cols], a.metrics[cols], rtol=1e-5)
    np.testing.assert_allclose(b.metrics["loss"], a.metrics["loss"], rtol=1e-4)
