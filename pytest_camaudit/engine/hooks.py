"""Forward hooks for the one capturing forward: registered on entry, removed in ``finally``.

A family names what to record (:meth:`~pytest_camaudit.detectors.base.Family.hook_points`): a
module's output, its positional inputs (ultralytics' Detect head consumes its levels as input), or
its whole call with keyword arguments (what a transformers model passes its encoder and decoder).
The first call of each hook wins, so a module that runs twice records its first run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from torch import nn

from ..detectors.base import HookPoint


def _same(value: Any) -> Any:
    return value


@contextmanager
def recording(points: Mapping[str, HookPoint]) -> Iterator[dict[str, Any]]:
    """``with recording(points) as captured:`` — ``captured[name]`` is what ``points[name]`` saw.

    Every hook is removed when the block ends, also when the model raises inside it.
    """
    captured: dict[str, Any] = {}
    handles = []

    def on_output(name: str, take: Callable[[Any], Any]) -> Any:
        def hook(_module: nn.Module, _inp: Any, out: Any) -> None:
            if name not in captured:
                captured[name] = take(out)

        return hook

    def on_input(name: str, take: Callable[[Any], Any]) -> Any:
        def hook(_module: nn.Module, inp: Any) -> None:
            if name not in captured:
                captured[name] = take(inp)

        return hook

    def on_call(name: str, take: Callable[[Any], Any]) -> Any:
        def hook(_module: nn.Module, args: Any, kwargs: Any) -> None:
            if name not in captured:
                captured[name] = take((args, kwargs))

        return hook

    try:
        for name, point in points.items():
            take = point.take or _same
            if point.kind == "call":
                handles.append(point.module.register_forward_pre_hook(on_call(name, take), with_kwargs=True))
            elif point.kind == "input":
                handles.append(point.module.register_forward_pre_hook(on_input(name, take)))
            else:
                handles.append(point.module.register_forward_hook(on_output(name, take)))
        yield captured
    finally:
        for h in handles:
            h.remove()
