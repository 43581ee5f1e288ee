"""Capture and replay of a transformers detector: what :mod:`.huggingface`'s families record in the
forward and re-run with autograd afterwards. Plain torch; transformers is not imported here.

* :func:`recording` — forward hooks on the levels the transformer consumes and forward pre-hooks
  (with keyword arguments) on the encoder / decoder; removed when the block ends, also on error.
* :class:`Forward` — what one forward left, handed to the engine through :class:`Tap` (an identity
  module whose input the engine hooks: engine hooks see positional inputs only).
* :class:`Replay` — the transformer re-run from detached leaves of the captured maps; its
  gradients are the full forward's without an autograd forward of the backbone.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

_OUTPUT_FLAGS = ("output_attentions", "output_hidden_states", "return_dict")
"""Keyword arguments a replay sets itself (not kept from the recorded call)."""


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """``FloatTensor[3, H, W]`` in ``[0, 1]`` → ``uint8 [3, H, W]`` on the CPU (what an image file holds)."""
    return image.detach().float().mul(255.0).round_().clamp_(0, 255).to(device="cpu", dtype=torch.uint8)


@dataclass
class Forward:
    """What one forward of a batch left for the engine, through :class:`Tap`.

    Attributes:
        levels: the maps the transformer consumes, ``FloatTensor[B, C, h, w]`` each, detached.
        canvas: ``(Hp, Wp)`` of ``pixel_values``; ``resized``: per image, ``(Hr, Wr)`` (``pixel_mask``'s valid block).
        queries: per image, ``LongTensor[N]``: the decoder query of each detection.
        calls: ``"encoder"`` / ``"decoder"`` → the keyword arguments the model passed that module.
    """

    levels: list[torch.Tensor]
    canvas: tuple[int, int]
    resized: list[tuple[int, int]]
    queries: list[torch.Tensor]
    calls: dict[str, dict[str, Any]]


class Tap(nn.Module):
    """Identity module the family calls with each :class:`Forward`; the engine hooks its input."""

    def forward(self, record: Forward) -> Forward:
        return record


Recorded = tuple[dict[int, torch.Tensor], dict[str, dict[str, Any]]]
"""What :func:`recording` saw: ``(level outputs by position, keyword arguments by module name)``."""


@contextmanager
def recording(levels: Sequence[nn.Module], calls: Mapping[str, nn.Module]) -> Iterator[Recorded]:
    """Record each of ``levels``' output and the keyword arguments ``calls`` are called with (tensors detached).

    The first call of each module wins; every hook is removed when the block ends, also on error.
    """
    outputs: dict[int, torch.Tensor] = {}
    kwargs_of: dict[str, dict[str, Any]] = {}

    def on_level(i: int) -> Any:
        def hook(_m: nn.Module, _args: Any, out: torch.Tensor) -> None:
            outputs.setdefault(i, out.detach())

        return hook

    def on_call(name: str) -> Any:
        def hook(_m: nn.Module, _args: Any, kwargs: dict[str, Any]) -> None:
            kwargs_of.setdefault(name, {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items() if k not in _OUTPUT_FLAGS})

        return hook

    handles = []
    try:
        handles += [m.register_forward_hook(on_level(i)) for i, m in enumerate(levels)]
        handles += [m.register_forward_pre_hook(on_call(n), with_kwargs=True) for n, m in calls.items()]
        yield outputs, kwargs_of
    finally:
        for h in handles:
            h.remove()


@dataclass
class Replay:
    """The transformer re-run, with autograd, from detached leaves of one capture's levels.

    Attributes:
        leaves: level name → ``FloatTensor[1, C, h, w]`` leaf (``requires_grad``).
        logits: ``FloatTensor[1, Q, K]`` class logits (the model's own, to the last bit).
        attentions: ``"encoder"`` / ``"decoder"`` / ``"cross"`` → per layer attention probabilities
            ``[1, heads, n, m]`` (only in a replay built with attentions).
    """

    leaves: OrderedDict[str, torch.Tensor]
    logits: torch.Tensor
    attentions: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    def gradients(self, query: int, label: int) -> OrderedDict[str, torch.Tensor]:
        """``d logits[0, query, label] / d level``: level name → ``FloatTensor[C, h, w]`` (zeros where unused)."""
        names = list(self.leaves)
        grads = torch.autograd.grad(self.logits[0, query, label], [self.leaves[n] for n in names], retain_graph=True, allow_unused=True)
        return OrderedDict((n, (g[0] if g is not None else torch.zeros_like(self.leaves[n][0])).detach())
                           for n, g in zip(names, grads, strict=True))
