"""``explore(image, model=...)``: audit one image outside pytest, the detector loaded once per model.

The model is named exactly as ``--camaudit-model`` takes it and loaded by the same code
(:func:`pytest_camaudit.detectors.loading.load_detector`, after the option's own validation), so
what a notebook explores is what a test will audit. Detectors stay cached per
``(model, weights, device)`` and engines per method, for the life of the process or until
:func:`release_detectors`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..detectors.base import Detector
    from ..engine.engine import CamEngine
    from .shown import NotebookCase

_DETECTORS: dict[tuple[str, str | None, str], Detector] = {}
_ENGINES: dict[tuple[str, str | None, str, str], CamEngine] = {}
ENGINE_CACHE = 4
"""Images whose forward each notebook engine keeps (a released case drops its own at once)."""


def _checked(what: str, parse: Any, value: str) -> str:
    try:
        checked: str = parse(value)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"`{what}`: {exc}") from None
    return checked


def engine_for(model: str, method: str, device: str, weights: str | None = None, offline: bool | None = None) -> CamEngine:
    """The cached engine of ``model`` (a ``--camaudit-model`` value) for ``method`` on ``device``; loads the detector once.

    Raises:
        ValueError: a model, method or device the matching ``--camaudit-*`` option would refuse.
        ModelLoadError: the model cannot be loaded (the message says why and what to do).
    """
    from ..plugin.options import parse_device, parse_method, parse_model

    model, method, device = _checked("model", parse_model, model), _checked("method", parse_method, method), _checked("device", parse_device, device)
    key = (model, weights, device)
    if key not in _DETECTORS:
        from ..detectors.loading import load_detector

        if offline is None:
            offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        _DETECTORS[key] = load_detector(model, weights, device, offline=offline)
    engine_key = (model, weights, device, method)
    if engine_key not in _ENGINES:
        from ..engine.engine import CamEngine

        _ENGINES[engine_key] = CamEngine(_DETECTORS[key], method, cache_size=ENGINE_CACHE)
    return _ENGINES[engine_key]


def explore(image: Any, model: str = "shapes", *, method: str = "eigencam", device: str = "auto", weights: str | None = None,
            score_threshold: float = 0.5, name: str | None = None, offline: bool | None = None) -> NotebookCase:
    """Audit ``image`` outside pytest: one forward, a case to look at and to assert on.

    Args:
        image: a path, ``uint8 [H, W, 3]`` RGB array, PIL image or tensor (as ``camaudit.audit`` takes).
        model: a ``--camaudit-model`` value (``shapes``, ``fasterrcnn_resnet50_fpn``, ``best.pt``,
            ``pkg.module:factory``…); its detector is loaded once and cached.
        method: the case's default CAM method (a ``--camaudit-method`` value).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (``--camaudit-device``).
        weights: a ``--camaudit-weights`` value.
        score_threshold: ``assert_detected``'s default threshold and what the pictures show.
        name: what the case is called (default: the file name).
        offline: never reach a model hub (default: ``HF_HUB_OFFLINE`` is set).

    Returns:
        A :class:`~pytest_camaudit.notebook.shown.NotebookCase`: display it, call its ``assert_…``
        methods, ``case.cam(...)`` for a map, ``case.test_source()`` for a test,
        ``case.release()`` to free it.

    Raises:
        ValueError: an argument the matching option would refuse.
        ModelLoadError, ImageInputError, DetectorRuntimeError: as in a test.
    """
    from ..engine.images import load_image
    from ..methods.registry import needs_graph
    from ..validation import number_in
    from .display import register_formatters
    from .shown import NotebookCase

    try:
        threshold = number_in(score_threshold)
    except ValueError as exc:
        raise ValueError(f"`score_threshold`: {exc}") from None
    engine = engine_for(model, method, device, weights, offline)
    label = name or (Path(image).name if isinstance(image, (str, Path)) else "image")
    loaded = load_image(image, name=label)
    analysis = engine.analyze(loaded, grad=needs_graph(engine))
    register_formatters()
    return NotebookCase(engine, loaded, analysis, label, model.strip(), weights, score_threshold=threshold)


def release_detectors() -> int:
    """Forget every cached detector and engine (and the analyses they keep); returns how many detectors were cached."""
    n = len(_DETECTORS)
    for engine in _ENGINES.values():
        engine.clear()
    _ENGINES.clear()
    _DETECTORS.clear()
    return n
