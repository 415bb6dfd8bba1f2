"""AdamW's update (torch.optim.AdamW's defaults: betas 0.9/0.999, eps 1e-8, decoupled
weight decay), written out: `torch.optim` imports torch._dynamo on first use, about
4 s, for a few tensors that need ten lines (the engine's Adam is hand-written too)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class AdamW:
    """In-place AdamW steps on `params` (their `.grad` set by a backward pass)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, weight_decay: float) -> None:
        self.params = list(params)
        self.lr, self.weight_decay, self.t = lr, weight_decay, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        b1, b2, eps = 0.9, 0.999, 1e-8
        self.t += 1
        step_size = self.lr / (1 - b1**self.t)
        root_bc2 = math.sqrt(1 - b2**self.t)
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            p.mul_(1 - self.lr * self.weight_decay)
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            p.addcdiv_(m, v.sqrt().div_(root_bc2).add_(eps), value=-step_size)
