"""Bad input as a careful user gives it (issue 26): each case gets a clear error that
says what to do, or the behaviour it names; none reaches the model or a traceback
from inside a library."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lm_probe_widgets import ProbeDataset, ProbeError
from lm_probe_widgets.core.io.tiny import tiny_tokenizer

TEXTS = ["a good film", "a bad film", "great acting", "dull plot"]


# ------------------------------------------------------------------ missing labels


@pytest.mark.parametrize(
    "labels",
    [
        pd.Series(["pos", np.nan, "neg", "pos"]),  # a pandas string column with a gap
        ["pos", None, "neg", "pos"],
        [1, 0, None, 1],  # ints next to a None
        pd.array(["pos", pd.NA, "neg", "pos"], dtype="string"),
        pd.array([1, pd.NA, 0, 1], dtype="Int64"),
    ],
    ids=["pandas-nan", "none-str", "none-int", "pandas-string-na", "pandas-Int64-na"],
)
def test_missing_labels_are_refused_never_a_class(labels):
    tok = tiny_tokenizer()
    with pytest.raises(ProbeError, match=r"1 of 4 labels are missing.*drop those examples"):
        ProbeDataset.from_texts(TEXTS, labels, tok)
    ids = tok(TEXTS)["input_ids"]
    with pytest.raises(ProbeError, match="labels are missing"):
        ProbeDataset(ids, labels=labels)


def test_numbers_behind_an_object_dtype_stay_numbers():
    ds = ProbeDataset.from_texts(TEXTS, pd.Series([1, 0, 1, 0], dtype=object), tiny_tokenizer())
    assert ds.label_names is None and ds.labels.tolist() == [1, 0, 1, 0]


def test_float_nan_labels_say_which_examples():
    with pytest.raises(ProbeError, match=r"1 of 4 labels are missing or not finite.*\[2\]"):
        ProbeDataset.from_texts(TEXTS, [1.0, 0.0, np.nan, 1.0], tiny_tokenizer())
