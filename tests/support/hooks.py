"""Counting the hooks left on a model: the plugin's hooks must all be gone after every forward."""

from __future__ import annotations

import torch


def count_hooks(model: torch.nn.Module) -> int:
    """Forward, forward-pre, backward and backward-pre hooks registered on ``model`` and its submodules."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
               for m in model.modules())
