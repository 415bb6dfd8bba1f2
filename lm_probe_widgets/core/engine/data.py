"""ProbeDataset: token ids kept unpadded, labels kept as int64, padding done per batch.

Keeping each example as its own token list means the user's padding side and
amount never reach the model: batches are re-padded on the right, with an
attention mask, from length-sorted buckets.
"""

from __future__ import annotations

import hashlib
import itertools
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ProbeError


def _check_texts(texts: list[Any]) -> None:
    """Every text a string that UTF-8 can encode, said with its index: a tokenizer's
    own error for a None or a lone surrogate ("\ud800", from a bad decode) names none."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ProbeError(
                f"text {i} is {type(text).__name__} {text!r:.40}, not a string: every text "
                "must be a string (drop or fill missing texts first)"
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ProbeError(
                f"text {i} holds {text[e.start : e.end]!r} at character {e.start}, which "
                "is not valid Unicode (a lone surrogate, e.g. from decoding bytes with "
                "errors='surrogateescape'): fix or drop that text"
            ) from None


def _is_missing(v: Any) -> bool:
    """None, NaN, pandas.NA or NaT: a label that is not there."""
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    try:
        import pandas as pd

        return v is pd.NA or v is pd.NaT
    except ImportError:  # pragma: no cover
        return False


def _object_labels(arr: np.ndarray) -> np.ndarray:
    """An object array of labels (a list mixing types, a pandas object column): missing
    values refused, and numbers kept numbers (never turned into names)."""
    values = arr.tolist()
    missing = [i for i, v in enumerate(values) if _is_missing(v)]
    if missing:
        raise ProbeError(
            f"{len(missing)} of {len(values)} labels are missing (None or NaN; e.g. "
            f"examples {missing[:5]}): drop those examples first (the lm-probe CLI "
            "drops such rows), or give them a label; a missing label is never a class"
        )
    if all(isinstance(v, (int, float, np.integer, np.floating, np.bool_)) for v in values):
        return np.asarray(values)  # numbers behind an object dtype: numbers
    return arr


def _as_2d_list(x: Any, what: str) -> list[np.ndarray]:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        if x.ndim != 2:
            raise ProbeError(f"{what} must be 2-D (examples x tokens), got shape {x.shape}")
        return list(x)
    return [np.asarray(row) for row in x]


@dataclass
class Batch:
    """One padded batch: `indices` into the dataset, right-padded ids and mask."""

    indices: np.ndarray
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    traced: int | None = None  # how many ran through the model (0: cache or store)

    @property
    def real_tokens(self) -> int:
        return int(self.attention_mask.sum())

    @property
    def padded_tokens(self) -> int:
        return int(self.attention_mask.numel())


class ProbeDataset:
    """Tokenised examples with optional labels.

    `labels` may be one label per example (sequence probes) or one per token
    (token-level probes, same shape as `input_ids`; mark ignored tokens with the
    config's `null_label`). String labels are mapped to ids; `label_names` keeps
    the mapping. Non-integer numbers are continuous targets (regression probes).

    Built from a padded 2-D tensor or array (the original lm_probe's way), items and
    slices come back as given, padding included, so they stack as they did there;
    the probes still only ever see each example's real tokens.
    """

    def __init__(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        labels: Any = None,
        *,
        label_names: Sequence[str] | None = None,
    ) -> None:
        rows = _as_2d_list(input_ids, "input_ids")
        if attention_mask is None:
            masks = [np.ones(len(r), dtype=bool) for r in rows]
        else:
            masks = [
                np.asarray(m).astype(bool) for m in _as_2d_list(attention_mask, "attention_mask")
            ]
            if len(masks) != len(rows):
                raise ProbeError(
                    f"attention_mask has {len(masks)} rows but input_ids has {len(rows)}"
                )
        self.tokens: list[np.ndarray] = []
        for i, (r, m) in enumerate(zip(rows, masks, strict=True)):
            if len(m) != len(r):
                raise ProbeError(f"example {i}: attention_mask and input_ids lengths differ")
            self.tokens.append(np.asarray(r, dtype=np.int64)[m])
        if not self.tokens:
            raise ProbeError("the dataset is empty: pass at least one example")
        empty = [i for i, t in enumerate(self.tokens) if len(t) == 0]
        if empty:
            raise ProbeError(
                f"{len(empty)} example(s) have no real tokens (e.g. index {empty[0]}); "
                "drop empty texts before building the dataset"
            )
        self.label_names: list[str] | None = list(label_names) if label_names else None
        self.labels: np.ndarray | None = None  # (n,) for sequence labels
        self.token_labels: list[np.ndarray] | None = None  # per-example arrays for token labels
        self._bool_labels: np.ndarray | None = None  # `labels`, when given as booleans
        # one group id per example (source, author), set by tt_split(groups=...) and kept
        # by every subset: validation splits, CV folds and resamples keep groups whole
        self.groups: np.ndarray | None = None
        if labels is not None:
            self._set_labels(labels, masks)
        # Padded rows as the user gave them (2-D input only): what `ds[i]` returns.
        self._given: tuple[torch.Tensor, torch.Tensor] | None = None
        if isinstance(input_ids, (torch.Tensor, np.ndarray)):
            ids = torch.as_tensor(input_ids)
            given_mask = torch.ones_like(ids) if attention_mask is None else attention_mask
            self._given = (ids, torch.as_tensor(given_mask))

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        labels: Any = None,
        tokenizer: Any = None,
        *,
        max_length: int | None = 128,
        add_special_tokens: bool = True,
    ) -> ProbeDataset:
        """Tokenise `texts` without padding (padding happens per batch, later)."""
        if tokenizer is None:
            raise ProbeError(
                "from_texts needs the model's tokenizer: from_texts(texts, labels, tok)"
            )
        if isinstance(texts, str):
            raise ProbeError("texts must be a list of strings, not one string")
        texts = list(texts)
        if not texts:
            raise ProbeError("no texts given: from_texts needs at least one text")
        if labels is not None and len(labels) != len(texts):
            raise ProbeError(
                f"{len(texts)} texts but {len(labels)} labels: give one label per text"
            )
        _check_texts(texts)
        enc = tokenizer(
            texts,
            truncation=max_length is not None,
            max_length=max_length,
            add_special_tokens=add_special_tokens,
        )
        ds = cls(enc["input_ids"], enc.get("attention_mask"), labels)
        ds.texts = texts
        return ds

    def _set_labels(self, labels: Any, masks: list[np.ndarray]) -> None:
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        first = labels[0] if len(labels) else None
        per_token = (isinstance(labels, np.ndarray) and labels.ndim == 2) or (
            not isinstance(labels, np.ndarray) and isinstance(first, (list, tuple, np.ndarray))
        )
        if len(labels) != len(self.tokens):
            raise ProbeError(
                f"{len(self.tokens)} examples but {len(labels)} labels: give one label per example"
            )
        if per_token:
            out = []
            for i, (lab, m) in enumerate(zip(labels, masks, strict=True)):
                lab = np.asarray(lab, dtype=np.int64)
                if len(lab) == len(m):
                    lab = lab[m]
                if len(lab) != len(self.tokens[i]):
                    raise ProbeError(
                        f"example {i}: {len(lab)} token labels for {len(self.tokens[i])} tokens"
                    )
                out.append(lab)
            self.token_labels = out
            return
        arr = np.asarray(labels)
        if arr.dtype.kind == "O":
            arr = _object_labels(arr)
        if arr.dtype.kind in "OUS":  # strings: map to ids, keep names
            names = sorted({str(v) for v in arr}) if self.label_names is None else self.label_names
            index = {n: i for i, n in enumerate(names)}
            unknown = sorted({str(v) for v in arr} - set(index))
            if unknown:
                raise ProbeError(f"labels {unknown[:5]} are not in label_names {names}")
            arr = np.array([index[str(v)] for v in arr], dtype=np.int64)
            self.label_names = names
        elif arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)):
                bad = np.flatnonzero(~np.isfinite(arr))
                raise ProbeError(
                    f"{len(bad)} of {len(arr)} labels are missing or not finite (labels "
                    f"contain NaN or inf; e.g. examples {bad[:5].tolist()}): drop those "
                    "examples first (the lm-probe CLI drops such rows)"
                )
            big = float(np.abs(arr).max()) if arr.size else 0.0
            with np.errstate(over="ignore"):
                squares = float(np.sum(np.square(arr, dtype=np.float64)))
            if not np.isfinite(squares):  # every squared error and variance: inf or NaN
                raise ProbeError(
                    f"labels reach {big:.3g}: too large for their squares (variances, "
                    "squared errors) to be computed, so every metric would be NaN; "
                    "rescale them first (divide by a power of ten, or take a log)"
                )
            # continuous targets (regression probes); whole numbers beyond 2**53 are no
            # class ids either (floats there have no fractions, and int64 ends at 9.2e18)
            if big >= 2**53 or not np.all(arr == np.round(arr)):
                self.labels = arr.astype(np.float64)
                return
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "b":  # kept as 0/1, given back as False/True
            self.labels = self._bool_labels = arr.astype(np.int64)
            return
        self.labels = arr.astype(np.int64, copy=False)

    # -- basics -----------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: Any) -> dict[str, torch.Tensor]:
        """`ds[i]`: one example, unpadded. `ds[0:5]`, `ds[[1, 4]]`, a boolean mask:
        a right-padded batch (`input_ids`, `attention_mask`, `labels`), as the
        original lm_probe returned; `ProbeDataset.collate` pads a list of items the
        same way for a torch DataLoader."""
        if isinstance(i, slice) or not np.isscalar(i) and not isinstance(i, torch.Tensor):
            idx = np.arange(len(self))[i] if isinstance(i, slice) else np.asarray(i)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            if self._given is not None:  # padded as given: stack the rows as they are
                items = [self[int(j)] for j in idx]
                if not items:
                    raise ProbeError("an empty selection: nothing to batch")
                return {k: torch.stack([it[k] for it in items]) for k in items[0]}
            return self.collate([self[int(j)] for j in idx])
        if isinstance(i, torch.Tensor):
            return self[i.tolist()] if i.ndim else self[int(i)]
        if self._given is not None:
            return self._given_item(int(i))
        ids = torch.from_numpy(self.tokens[i])
        item = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if self.labels is not None:
            item["labels"] = torch.tensor(self.labels[i])
        elif self.token_labels is not None:
            item["labels"] = torch.from_numpy(self.token_labels[i])
        return item

    def _given_item(self, i: int) -> dict[str, torch.Tensor]:
        """Example i padded as it was given; token labels placed on its real tokens, -100
        on its padding (labels read now, so a relabelled copy shows its own labels)."""
        ids, mask = self._given
        item = {"input_ids": ids[i], "attention_mask": mask[i]}
        if self.labels is not None:
            item["labels"] = torch.tensor(self.labels[i])
        elif self.token_labels is not None:
            row = torch.full(ids[i].shape, -100, dtype=torch.long)
            row[mask[i].bool()] = torch.from_numpy(self.token_labels[i])
            item["labels"] = row
        return item

    @staticmethod
    def collate(items: Sequence[dict[str, torch.Tensor]], pad_id: int = 0) -> dict[str, Any]:
        """Right-pad a list of `ds[i]` items into one batch (`DataLoader(ds,
        collate_fn=ProbeDataset.collate)`); token labels are padded with -100."""
        if not items:
            raise ProbeError("an empty selection: nothing to batch")
        width = max(len(it["input_ids"]) for it in items)
        ids = torch.full((len(items), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, it in enumerate(items):  # an item's own mask: padded items keep theirs
            n = len(it["input_ids"])
            ids[row, :n], mask[row, :n] = it["input_ids"], it["attention_mask"]
        out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "labels" in items[0]:
            labels = [it["labels"] for it in items]
            if labels[0].ndim == 0:
                out["labels"] = torch.stack(labels)
            else:
                out["labels"] = torch.full((len(items), width), -100, dtype=torch.long)
                for row, lab in enumerate(labels):
                    out["labels"][row, : len(lab)] = lab
        return out

    def __repr__(self) -> str:
        kind = (
            "token labels"
            if self.is_token_level
            else ("labels" if self.labels is not None else "no labels")
        )
        return f"ProbeDataset({len(self)} examples, {kind})"

    @property
    def has_labels(self) -> bool:
        return self.labels is not None or self.token_labels is not None

    @property
    def label_values(self) -> np.ndarray | None:
        """Each example's label as a value: the name for string labels (`labels` then
        holds ids into `label_names`, which are this dataset's own), False/True for
        boolean labels, else the number."""
        if self.labels is None:
            return None
        if self.label_names:
            return np.asarray(self.label_names, dtype=object)[self.labels]
        if self.labels is getattr(self, "_bool_labels", None):  # not relabelled since
            return self.labels.astype(bool)
        return self.labels

    @property
    def is_token_level(self) -> bool:
        return self.token_labels is not None

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(t) for t in self.tokens), dtype=np.int64, count=len(self.tokens))

    def token_offsets(self) -> np.ndarray:
        """Where each example's tokens start in a token-level (one row per token) array."""
        return np.concatenate([[0], np.cumsum(self.lengths)])

    def fingerprint(self) -> str:
        """A content hash of the token ids: equal data gets the same feature cache.
        (Computed once: a dataset's tokens are not meant to change.)"""
        fp = getattr(self, "_fingerprint", None)
        if fp is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(self.lengths.tobytes())
            for t in self.tokens:
                h.update(t.tobytes())
            fp = self._fingerprint = h.hexdigest()
        return fp

    def subset(self, indices: Sequence[int] | np.ndarray) -> ProbeDataset:
        idx = np.asarray(indices, dtype=np.int64)
        new = object.__new__(ProbeDataset)
        new.tokens = [self.tokens[i] for i in idx]
        new.label_names = self.label_names
        new.labels = None if self.labels is None else self.labels[idx]
        bools = self.labels is not None and self.labels is getattr(self, "_bool_labels", None)
        new._bool_labels = new.labels if bools else None
        new.token_labels = (
            None if self.token_labels is None else [self.token_labels[i] for i in idx]
        )
        if hasattr(self, "texts"):
            new.texts = [self.texts[i] for i in idx]
        groups = getattr(self, "groups", None)
        new.groups = None if groups is None else groups[idx]
        given, rows = self._given, torch.from_numpy(idx)
        new._given = None if given is None else (given[0][rows], given[1][rows])
        if len(new.tokens) == 0:
            raise ProbeError("this split would be empty: use a smaller test_size or more data")
        return new

    # -- splitting --------------------------------------------------------------------
    def tt_split(
        self,
        test_size: float = 0.1,
        seed: int = 0,
        stratify: bool = True,
        groups: Sequence[Any] | None = None,
    ) -> tuple[ProbeDataset, ProbeDataset]:
        """Train/test split; stratified on sequence labels when every class allows it.

        `groups` (one id per example: its source, template or author) keeps every
        group wholly on one side, so the test set measures what a probe does on
        sources it never saw, not how well it remembers them. The test side then
        holds whole groups: its size is close to `test_size`, not exact (a warning says
        so when it is under half or over twice the size asked). Both sides keep the group ids
        (`.groups`), so the fit's validation split and CV folds keep groups whole too."""
        ids = None if groups is None else _group_ids(groups, len(self))
        train_idx, test_idx = split_indices(
            len(self), test_size, seed, self.labels if stratify else None, groups=ids
        )
        if ids is not None:
            marked = self.subset(np.arange(len(self)))
            marked.groups = ids
            return marked.subset(train_idx), marked.subset(test_idx)
        return self.subset(train_idx), self.subset(test_idx)

    # -- batching ---------------------------------------------------------------------
    def batches(
        self,
        batch_size: int,
        *,
        seed: int | None = 0,
        indices: np.ndarray | None = None,
        pad_id: int = 0,
    ) -> Iterator[Batch]:
        """Right-padded batches from length-sorted buckets, bucket order shuffled by `seed`.

        Sorting keeps padding to a few percent of real tokens; results do not depend
        on it because masked positions never reach a pooled feature.
        """
        if batch_size < 1:
            raise ProbeError("batch_size must be at least 1")
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[idx]
        order = idx[np.argsort(lengths, kind="stable")]
        chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if seed is not None:
            np.random.default_rng(seed).shuffle(chunks)
        for chunk in chunks:
            yield self.pad(chunk, pad_id=pad_id)

    def pad(self, indices: np.ndarray, pad_id: int = 0) -> Batch:
        seqs = [self.tokens[i] for i in indices]
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = s
            mask[row, : len(s)] = 1
        return Batch(np.asarray(indices), torch.from_numpy(ids), torch.from_numpy(mask))


def split_indices(
    n: int,
    test_size: float,
    seed: int,
    labels: np.ndarray | None = None,
    groups: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of range(n); stratified by `labels` when each class has 2+ examples.
    With `groups` (one id per index), whole groups go to one side or the other."""
    from sklearn.model_selection import train_test_split

    test_size = _check_test_size(test_size, n)
    n_test = test_size if isinstance(test_size, int) else int(np.ceil(test_size * n))
    if n_test < 1 or n - n_test < 1:
        raise ProbeError(
            f"cannot split {n} example(s) with test_size={test_size}: both parts need examples"
        )
    seed = _check_seed(seed)
    if groups is not None:
        train, test = _grouped_split(n_test, seed, labels, _group_ids(groups, n))
        if not n_test / 2 <= len(test) <= 2 * n_test:
            warnings.warn(
                f"tt_split: with whole groups on each side the test set holds {len(test)} "
                f"of {n} examples ({len(test) / n:.0%}), far from test_size={test_size!r} "
                f"({n_test} examples): the groups are too few or too uneven for that size",
                stacklevel=3,
            )
        return train, test
    stratify = None
    if labels is not None:
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2 and n_test >= len(counts) and n - n_test >= len(counts):
            stratify = labels
    train, test = train_test_split(
        np.arange(n), test_size=test_size, random_state=seed, stratify=stratify
    )
    return np.sort(train), np.sort(test)


def _check_test_size(test_size: Any, n: int) -> int | float:
    """A fraction in (0, 1) as a float, or a count of examples (numpy ints too) as an int."""
    if not isinstance(test_size, (bool, np.bool_)):
        if isinstance(test_size, (int, np.integer)) and 0 < test_size < n:
            return int(test_size)
        if isinstance(test_size, (float, np.floating)) and 0 < test_size < 1:
            return float(test_size)
    raise ProbeError(
        f"test_size must be a fraction in (0, 1) or a count of examples below {n}, "
        f"got {test_size!r}"
    )


def _check_seed(seed: Any) -> int:
    """A seed scikit-learn and numpy take: an integer in 0 .. 2**32 - 1."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ProbeError(f"seed must be an integer, got {seed!r}")
    if not 0 <= seed < 2**32:
        raise ProbeError(f"seed must be between 0 and 2**32 - 1, got {seed}")
    return int(seed)


def _group_ids(groups: Sequence[Any], n: int) -> np.ndarray:
    """Any hashable group ids as 0..g-1, numbered in order of first appearance."""
    if isinstance(groups, str):
        raise ProbeError("groups must give one group id per example, not one string")
    if isinstance(groups, torch.Tensor):
        groups = groups.tolist()
    groups = list(groups)
    if len(groups) != n:
        raise ProbeError(f"{n} examples but {len(groups)} group ids: give one per example")
    missing = [i for i, g in enumerate(groups) if _is_missing(g)]
    if missing:
        raise ProbeError(
            f"{len(missing)} group ids are missing (None or NaN; e.g. examples "
            f"{missing[:5]}): give every example a group (its own id if it has none)"
        )
    index: dict[Any, int] = {}
    groups = [g.item() if isinstance(g, np.generic) else g for g in groups]
    return np.array([index.setdefault(g, len(index)) for g in groups], dtype=np.int64)


def _grouped_split(
    n_test: int, seed: int, labels: np.ndarray | None, group_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) with whole groups: of the k folds of a seeded group k-fold
    (stratified by label when every class has k examples or more), the one whose
    size is closest to the smaller side becomes that side."""
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    n, n_groups = len(group_ids), int(group_ids.max()) + 1
    if n_groups < 2:
        raise ProbeError("every example is in one group: a grouped split needs at least two groups")
    small = min(n_test, n - n_test)
    k = int(np.clip(round(n / small), 2, n_groups))
    x = np.zeros(n)
    folds: list[np.ndarray] = []
    if labels is not None and np.unique(labels, return_counts=True)[1].min() >= k:
        sgkf = StratifiedGroupKFold(k, shuffle=True, random_state=seed)
        folds = [f for _, f in sgkf.split(x, labels, group_ids) if 0 < len(f) < n]
    if not folds:
        gkf = GroupKFold(k, shuffle=True, random_state=seed)
        folds = [f for _, f in gkf.split(x, groups=group_ids) if 0 < len(f) < n]
    side = np.sort(min(folds, key=lambda f: abs(len(f) - small)))
    rest = np.setdiff1d(np.arange(n), side)
    return (rest, side) if small == n_test else (side, rest)


def find_duplicates(a: ProbeDataset, b: ProbeDataset | None = None) -> list[tuple[int, int]]:
    """(index in `a`, index in `b`) of every pair of examples with identical token ids,
    sorted; within one dataset (`b` None) the pairs (i, j) with i < j.
    Hashing the ids finds them in one pass over each dataset."""
    seen: dict[bytes, list[int]] = {}
    for i, t in enumerate(a.tokens):
        seen.setdefault(np.asarray(t, np.int64).tobytes(), []).append(i)
    if b is None:
        return sorted(p for idx in seen.values() for p in itertools.combinations(idx, 2))
    found = (
        (i, j)
        for j, t in enumerate(b.tokens)
        for i in seen.get(np.asarray(t, np.int64).tobytes(), ())
    )
    return sorted(found)


def check_leakage(train: ProbeDataset, test: ProbeDataset, what: str = "test") -> str | None:
    """A message when `what` examples (test, validation) also appear (same token ids)
    in the training data, else None. A probe can score such examples by memory, so held-out metrics
    overstate what it learned; call this before fitting and warn."""
    pairs = find_duplicates(train, test)
    if not pairs:
        return None
    leaked = {j for _, j in pairs}
    i, j = min(pairs, key=lambda p: (p[1], p[0]))
    texts = getattr(test, "texts", None)
    if texts is not None:
        shown = texts[j] if len(texts[j]) <= 60 else texts[j][:57] + "..."
        example = repr(shown)
    else:
        ids = test.tokens[j].tolist()
        example = f"token ids {ids[:8]}{'...' if len(ids) > 8 else ''}"
    return (
        f"{len(leaked)} of {len(test)} {what} examples also appear in the training data "
        f"(e.g. {what} example {j} = training example {i}: {example}); a probe can score "
        "them by memory: drop them, or split by group (tt_split(..., groups=...))"
    )
