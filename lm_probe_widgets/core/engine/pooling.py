"""Pooling token activations into one vector per example (or per real token).

All functions take activations `h` [batch, tokens, width] and the attention mask
[batch, tokens]; padding never contributes, whichever side it is on. They pool in
float32 so bf16/fp16 activations cannot overflow a sum.
"""

from __future__ import annotations

import torch


def _mask(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return mask.to(device=h.device, dtype=torch.bool)


def mean_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = _mask(h, mask).unsqueeze(-1)
    total = (h.float() * m).sum(1)
    return total / m.sum(1).clamp(min=1)


def last_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = _mask(h, mask)
    positions = torch.arange(m.shape[1], device=h.device).expand_as(m)
    last = torch.where(m, positions, -1).max(1).values.clamp(min=0)
    return h[torch.arange(h.shape[0], device=h.device), last].float()


def first_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = _mask(h, mask)
    positions = torch.arange(m.shape[1], device=h.device).expand_as(m)
    first = torch.where(m, positions, m.shape[1]).min(1).values.clamp(max=m.shape[1] - 1)
    return h[torch.arange(h.shape[0], device=h.device), first].float()


def max_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = _mask(h, mask).unsqueeze(-1)
    return h.float().masked_fill(~m, float("-inf")).max(1).values


def token_rows(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-level: the real tokens of every example, in order, as rows."""
    return h[_mask(h, mask)].float()


POOLERS = {
    "mean": mean_pool,
    "last": last_pool,
    "first": first_pool,
    "max": max_pool,
    "none": token_rows,
}


def pool(h: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    if h.dim() == 2:  # a module whose output has no token axis: one vector per example
        if how == "none":
            raise ValueError("token-level probing needs a [batch, tokens, width] activation")
        return h.float()
    if h.dim() != 3:
        raise ValueError(f"cannot pool an activation of shape {tuple(h.shape)}")
    return POOLERS[how](h, mask)
