"""Feature rows where the probe maths reads them: numpy on the host, or a torch
tensor on the probe device. One home for moving, joining and gathering rows, so the
fit, the final fit and the cache never branch on numpy-or-torch themselves."""

from __future__ import annotations

import numpy as np
import torch


def rows_on(x: np.ndarray | torch.Tensor, device: torch.device | None) -> np.ndarray | torch.Tensor:
    """Rows `x` where the probe maths reads them: numpy on the host for None, else a
    tensor on `device` (no copy where they already are)."""
    if device is None:
        return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return torch.as_tensor(x, device=device)


def float_rows(x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Rows `x` as float32 where they are kept: a tensor stays on its device, anything
    else becomes numpy (the final fit reads device rows in place)."""
    return x.float() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def concat_rows(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor):
    """Rows `a` then rows `b`, float32, kept where `a` is (`float_rows`)."""
    if isinstance(a, torch.Tensor):
        return torch.cat([a.float(), rows_on(b, a.device).float()])
    b = np.asarray(rows_on(b, None), dtype=np.float32)
    return np.concatenate([np.asarray(a, dtype=np.float32), b])


def stack_rows(xs: list, device: torch.device | None) -> np.ndarray | torch.Tensor:
    """Rows of several probes [P, n, d] as float32, where `device` says (`rows_on`)."""
    if device is None:
        return np.stack([rows_on(x, None) for x in xs]).astype(np.float32, copy=False)
    return torch.stack([rows_on(x, device) for x in xs]).float()


def gather_rows(picks: list, device: torch.device | None) -> np.ndarray | torch.Tensor:
    """Rows [P, b, d] float32 of several probes, `picks` = [(features, row numbers)]:
    each gathered where its features are kept, then sent where `device` says
    (`rows_on`); on the host straight into one array."""
    if device is not None:
        return torch.stack([rows_on(f[idx], device) for f, idx in picks]).float()
    x = np.empty((len(picks), len(picks[0][1]), picks[0][0].shape[1]), dtype=np.float32)
    for i, (f, idx) in enumerate(picks):
        np.take(f, idx, axis=0, out=x[i])
    return x
