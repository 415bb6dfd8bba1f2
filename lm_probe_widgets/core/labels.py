"""One label space per probe: the class values, in a fixed order, and nothing else.

Every dataset's labels are encoded through the probe's classes by *value*, never by
a dataset's own ids, so "pos" means "pos" in a training set and in a test set built
separately. The order is fixed when the probe is configured (or taken sorted from
the training data), never from a set's iteration order, which changes with the
hash seed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .errors import ProbeError


def label_key(v: Any) -> Any:
    """Label values compare by value whatever their numpy/python type (1 == 1.0 == np.int8(1))."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v


def _sort_key(v: Any) -> tuple[int, Any]:
    v = label_key(v)
    return (0, v) if isinstance(v, (int, float)) else (1, str(v))


def ordered_classes(classes: Iterable[Any]) -> tuple[Any, ...]:
    """Class values as a tuple: a list or tuple keeps its order, a set (unordered) is
    sorted (numbers first, then names), so the order never depends on the hash seed."""
    if isinstance(classes, (set, frozenset, dict)) or type(classes).__name__ == "dict_keys":
        values = sorted(classes, key=_sort_key)
    else:
        values = list(classes)
    return tuple(label_key(v) for v in values)


def classes_from_data(values: np.ndarray) -> tuple[Any, ...]:
    """The sorted distinct label values of training data (for `classes=None`)."""
    return ordered_classes({label_key(v) for v in values})


def encode_labels(
    name: str, classes: tuple[Any, ...], y: Iterable[Any], index: dict[Any, int] | None = None
) -> np.ndarray:
    """Label values -> indices into `classes`; a value outside them is a clear error."""
    if index is None:
        index = {label_key(c): i for i, c in enumerate(classes)}
    y = y.tolist() if isinstance(y, np.ndarray) else list(y)
    try:
        # Python values hash and compare like their label_key (1 == 1.0 == True): the
        # direct lookup is the same mapping, at a fifth of the cost.
        return np.fromiter((index[v] for v in y), np.int64, len(y))
    except (KeyError, TypeError):
        pass
    try:
        return np.fromiter((index[label_key(v)] for v in y), np.int64, len(y))
    except KeyError as e:
        seen = sorted({label_key(v) for v in y} - set(index), key=_sort_key)
        hint = "add them to ProbeConfig(classes=...) or filter the data"
        if seen and all(isinstance(c, int) for c in classes) and isinstance(seen[0], str):
            hint = f"the data's labels are names: use classes={seen[:5]!r}..."
        raise ProbeError(
            f"probe {name!r}: labels {seen[:5]} are not in classes {list(classes)}; {hint}. "
            "(A probe configured with classes=None takes them from its runner's first fit "
            "and keeps them: fit other labels with a new ProbeRunner.)"
        ) from e


def class_array(classes: tuple[Any, ...]) -> np.ndarray:
    """Classes as an array for decoding predictions: int64 when every class is an int
    (so predictions compare equal to int labels), otherwise the values as given."""
    if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in classes):
        return np.asarray(classes, dtype=np.int64)
    out = np.empty(len(classes), dtype=object)
    out[:] = list(classes)
    return out
