"""The :class:`Detector`: a model ready for auditing, with its class names, identity and family.

A :class:`Detector` bundles the ``nn.Module`` with its class names, a stable identity (a hash of its
weights), the *target layer* whose output the CAMs explain, and its
:class:`~pytest_camaudit.detectors.family.Family` (how to run and explain it; found by
:func:`~pytest_camaudit.detectors.registry.family_for`). It runs the model and checks what comes
back against the torchvision convention, so every family's outputs look the same above this layer.

A :class:`Detector` is a frozen value, built complete by :meth:`Detector.wrap` (or a family's own
``hf_detector`` / ``yolo_detector``): a variant is ``dataclasses.replace(detector, ...)``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..datatypes import Detection, LevelsFn
from ..errors import DetectorRuntimeError, ExpectationError, ModelLoadError
from .family import AttentionMaps, Capture, Family, HookPoint, LocalScorer, RawOutput, ScoreGraph, default_levels
from .registry import family_for, register_family

__all__ = ["AttentionMaps", "Capture", "Detector", "Family", "HookPoint", "LocalScorer", "RawOutput", "ScoreGraph", "default_levels",
           "model_device", "numbered", "register_family", "weights_identity"]

_CONTRACT = ("one dict per image with 'boxes' FloatTensor[N, 4] ([x1, y1, x2, y2] pixels), 'labels' Int64Tensor[N] "
             "and 'scores' FloatTensor[N] (the torchvision convention); wrap the model so that it returns that")


def weights_identity(model: nn.Module) -> str:
    """``sha1`` over parameter and buffer names, shapes and bytes: changes when any weight does."""
    h = hashlib.sha1()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


@dataclass(frozen=True)
class Detector:
    """A detector ready for auditing (frozen: never changed after it is built).

    Attributes:
        model: the ``nn.Module`` (eval mode, on ``device``).
        class_names: ``class_names[label]`` is the name of label index ``label``; index 0 is
            ``__background__`` for torchvision detectors.
        name: how reports call it (``"shapes"``, ``"fasterrcnn_resnet50_fpn"``…).
        target_layer: the module whose output feeds the CAMs.
        family: how to run and explain it (:class:`Family`).
        levels: turns ``target_layer``'s output into ``name → Tensor[B, C, h, w]``.
        device: where ``model`` lives.
        identity: hash of the weights (see :func:`weights_identity`).
        meta: anything else worth showing (checkpoint path, training facts…).
    """

    model: nn.Module
    class_names: list[str]
    name: str
    target_layer: nn.Module
    family: Family = field(default_factory=Family)
    levels: LevelsFn = default_levels
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    identity: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def wrap(
        cls,
        model: nn.Module,
        class_names: Sequence[str] | None = None,
        name: str | None = None,
        target_layer: nn.Module | None = None,
        levels: LevelsFn | None = None,
        device: str | torch.device | None = None,
        meta: dict[str, Any] | None = None,
        *,
        family: Family | None = None,
    ) -> Detector:
        """Wrap a detector: its family is found by :func:`~pytest_camaudit.detectors.registry.family_for`
        (or given), then completed for the model (:meth:`Family.for_model`).

        ``class_names`` defaults to what the family reads from the model (``model.class_names``,
        weights metadata…), else ``class_1 … class_N``. ``target_layer`` defaults to the family's;
        a different one keeps the torchvision protocol but loses the family's box-local shortcuts.
        """
        if not isinstance(model, nn.Module):
            raise ModelLoadError(f"expected a torch.nn.Module detector, got {type(model).__name__}")
        family = (family if family is not None else family_for(model)).for_model(model)
        default_layer = family.target_layer(model)
        layer = target_layer if target_layer is not None else default_layer
        if layer is None:
            raise ModelLoadError(
                f"{type(model).__name__} has no `backbone`; pass `target_layer=` (the module whose output "
                "the CAM should explain) to Detector.wrap"
            )
        if target_layer is not None and target_layer is not default_layer:
            family = Family()
        names = list(class_names) if class_names is not None else (family.class_names(model) or numbered(family.num_classes(model)))
        dev = torch.device(device) if device is not None else model_device(model)
        model = model.to(dev).eval()
        return cls(model=model, class_names=names, name=name or type(model).__name__, target_layer=layer, family=family,
                   levels=levels or family.levels, device=dev, identity=weights_identity(model),
                   meta={"family": family.name, **dict(meta or {})})

    # -- running ----------------------------------------------------------------------------------
    def run(self, images: list[torch.Tensor]) -> list[RawOutput]:
        """Raw detections of ``images`` (``FloatTensor[3, H, W]`` in ``[0, 1]``), checked against the contract.

        Raises:
            DetectorRuntimeError: the model raised, or returned something else than :data:`RawOutput` per image.
        """
        try:
            outputs = self.family.run(self, images)
        except DetectorRuntimeError:
            raise
        except Exception as exc:
            raise DetectorRuntimeError(
                f"detector {self.name} raised {type(exc).__name__} during forward: {exc} "
                "(the model's own traceback is shown above this error)"
            ) from exc
        return self._checked(outputs, len(images))

    def _checked(self, outputs: Any, n: int) -> list[RawOutput]:
        if not isinstance(outputs, (list, tuple)) or len(outputs) != n:
            got = f"a {type(outputs).__name__}" + (f" of {len(outputs)}" if isinstance(outputs, (list, tuple)) else "")
            raise DetectorRuntimeError(f"detector {self.name} returned {got} for {n} image(s); expected {_CONTRACT}")
        for out in outputs:
            if not isinstance(out, dict) or not all(isinstance(out.get(k), torch.Tensor) for k in ("boxes", "labels", "scores")):
                keys = sorted(out) if isinstance(out, dict) else type(out).__name__
                raise DetectorRuntimeError(f"detector {self.name} returned {keys} for an image; expected {_CONTRACT}")
            boxes, labels, scores = out["boxes"], out["labels"], out["scores"]
            if boxes.ndim != 2 or boxes.shape[-1] != 4 or not len(boxes) == len(labels) == len(scores):
                raise DetectorRuntimeError(f"detector {self.name} returned boxes {list(boxes.shape)}, labels {list(labels.shape)}, "
                                           f"scores {list(scores.shape)}; expected {_CONTRACT}")
            if not (torch.isfinite(boxes).all() and torch.isfinite(scores).all()):
                raise DetectorRuntimeError(
                    f"detector {self.name} returned NaN or infinite boxes or scores; the model is numerically broken "
                    "(NaN weights, or an input it cannot handle)"
                )
        return list(outputs)

    def detections(self, output: RawOutput) -> list[Detection]:
        """One image's :data:`RawOutput` as :class:`Detection` s, in the model's order."""
        boxes = output["boxes"].detach().float().cpu().tolist()
        labels = output["labels"].detach().cpu().tolist()
        scores = output["scores"].detach().float().cpu().tolist()
        return [Detection(i, (float(b[0]), float(b[1]), float(b[2]), float(b[3])), int(lab), self.label_name(int(lab)), float(s))
                for i, (b, lab, s) in enumerate(zip(boxes, labels, scores, strict=True))]

    @torch.no_grad()
    def detect(self, images: Sequence[torch.Tensor], batch_size: int = 1) -> list[list[Detection]]:
        """Plain detection (no hooks, no autograd) of ``FloatTensor[3, H, W]`` images, ``batch_size`` per call."""
        result: list[list[Detection]] = []
        for i in range(0, len(images), batch_size):
            result.extend(self.detections(o) for o in self.run(list(images[i : i + batch_size])))
        return result

    def graph_gradients(self, graph: ScoreGraph, detection: Detection) -> OrderedDict[str, torch.Tensor]:
        """``d score / d level`` by one backward through a forward's autograd graph (levels it does not reach: zeros).

        Raises:
            DetectorRuntimeError: the scores do not depend differentiably on the target layer.
        """
        levels, scores = graph
        if not scores.requires_grad:
            raise DetectorRuntimeError(
                f"the scores of {self.name} do not depend differentiably on its target layer; "
                "gradient CAM methods cannot explain it — use --camaudit-method=eigencam"
            )
        names = list(levels)
        grads = torch.autograd.grad(scores[detection.index], [levels[n] for n in names], retain_graph=True, allow_unused=True)
        return OrderedDict((n, (g[0] if g is not None else torch.zeros_like(levels[n][0])).detach())
                           for n, g in zip(names, grads, strict=True))

    def fill_colour(self) -> np.ndarray:
        """``uint8 [3]``: what "nothing here" looks like to this detector (see :meth:`Family.fill_colour`)."""
        return self.family.fill_colour(self)

    # -- classes ----------------------------------------------------------------------------------
    def label_name(self, label: int) -> str:
        """Name of ``label``, or ``"class <label>"`` when out of range."""
        return self.class_names[label] if 0 <= label < len(self.class_names) else f"class {label}"

    def label_index(self, name_or_index: str | int) -> int:
        """Index of a class given by name (or passed through when an int).

        Raises:
            ExpectationError: unknown class name; the message lists the known ones.
        """
        if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
            if 0 < name_or_index < len(self.class_names):
                return name_or_index
            raise ExpectationError(f"class index {name_or_index} is out of range 1..{len(self.class_names) - 1} for {self.name}")
        if name_or_index in self.class_names[1:]:
            return self.class_names.index(str(name_or_index))
        known = [c for c in self.class_names[1:] if c and c != "N/A"]
        shown = ", ".join(known[:30]) + (" …" if len(known) > 30 else "")
        raise ExpectationError(f"unknown class {name_or_index!r} for detector {self.name}; known classes: {shown}")


def numbered(n: int | None) -> list[str]:
    """``["__background__", "class_1", …]`` for a model that predicts ``n`` labels (background included)."""
    return ["__background__"] + [f"class_{i}" for i in range(1, (n or 2))]
