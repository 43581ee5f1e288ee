"""Hugging Face transformers detectors: what the DETR and RT-DETR families share, and loading a folder.

The families are :mod:`.detr` and :mod:`.rtdetr` (both :class:`TransformerFamily`). transformers is
an optional extra (``pip install 'pytest-camaudit[hf]'``), imported inside functions only.

**Loading, offline.** ``--camaudit-model=DIR`` loads a ``save_pretrained`` folder whose
``config.json`` says ``model_type`` ``detr`` or ``rt_detr``, with
``AutoModelForObjectDetection.from_pretrained(DIR, attn_implementation="eager", local_files_only=True)``
(eager: the attention relevance reads attention maps; the folder does not store the choice) and
the folder's image processor (without ``preprocessor_config.json``: the family's default). Nothing
reaches the network: the plugin names no Hub ids, and :func:`import_transformers` keeps the Hub
offline in the process (the environment is left as it was). A model object (a conftest, a
``package.module:callable``) goes through :meth:`Detector.wrap`, or :func:`hf_detector` to pass its processor.

**Labels.** transformers' labels are 0-based without background; the plugin keeps index 0 for
``__background__`` (:meth:`Detector.label_index` never returns it). So, as for ultralytics, the
plugin's label is the model's **+ 1**, ``class_names = ["__background__", *id2label]``: every class
is reachable, and ``detection.label - 1`` is the model's id (COCO DETR's ``person``, 1, is label 2).

**Running** (:meth:`TransformerFamily.run`). Images ``FloatTensor[3, H, W]`` in ``[0, 1]`` go back
to ``uint8`` (exact for every image the engine loads), through the image processor, the model and
the processor's own ``post_process_object_detection`` at :attr:`TransformerFamily.threshold` with
the original sizes: its boxes (original pixels, not clipped), labels and scores, in its order, each
traced to its decoder query (a rule per family, checked against that result). DETR's processor
pads a mixed-size batch, which changes the numbers, so only same-size images share a forward
(then equal to one at a time up to float rounding, like any batch).

**Capture** (:mod:`.hf_capture`). The maps the transformer consumes (the target layer) and the
keyword arguments the model passes its encoder / decoder are recorded by the family's own hooks
(removed in ``finally``) and reach the engine through :class:`~.hf_capture.Tap`, called after each
forward (engine hooks see positional inputs only). Gradients and relevance re-run only the
transformer from detached leaves of the captured maps (:class:`~.hf_capture.Replay`): the full
forward's gradients without an autograd forward.
"""
from __future__ import annotations

import json
import os
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..datatypes import Detection, Geometry
from ..errors import DetectorRuntimeError, ModelLoadError
from .base import Detector
from .family import Capture, DetectorView, Family, HookPoint, LocalScorer, RawOutput
from .hf_capture import Forward, Replay, Tap, recording, to_uint8
from .sources import Loader

HANDLED_TYPES: dict[str, str] = {"detr": "DetrForObjectDetection", "rt_detr": "RTDetrForObjectDetection"}
"""``config.json`` ``model_type`` → the class a family here explains."""

DEFAULT_THRESHOLD = 0.05
"""Score above which ``post_process_object_detection`` keeps a detection (torchvision's own
``box_score_thresh``): assertions then apply ``--camaudit-score-threshold`` as for any detector."""

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
INSTALL_HINT = "install the extra: pip install 'pytest-camaudit[hf]' (transformers>=5,<6 and safetensors)"
_HUB_SETTINGS = ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS")


def import_transformers() -> Any:
    """``transformers``, with the Hub offline and quiet in this process, the environment left as it was.

    ``huggingface_hub`` reads ``HF_HUB_OFFLINE`` and ``HF_HUB_DISABLE_PROGRESS_BARS`` once, when it is
    first imported: both are set to ``1`` (unless the user set them) for that import only, then put
    back, so no other library (nor ``--camaudit-offline``'s reading of ``HF_HUB_OFFLINE``) sees a
    change. Where a conftest imported transformers first, its settings stand; loading a folder passes
    ``local_files_only=True`` either way.

    Raises:
        ModelLoadError: transformers is not installed; the message says how to install it.
    """
    saved = {k: os.environ.get(k) for k in _HUB_SETTINGS}
    for k in _HUB_SETTINGS:
        os.environ.setdefault(k, "1")
    try:
        import huggingface_hub.constants  # noqa: F401  (reads the settings above)
        import transformers
    except ImportError as exc:
        raise ModelLoadError(f"Hugging Face detectors need transformers, which cannot be imported ({exc}); {INSTALL_HINT}") from exc
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return transformers


def is_transformers_model(model: nn.Module, classes: Sequence[str]) -> bool:
    """Whether ``model`` is a transformers model of one of ``classes`` (by class name, no import)."""
    return type(model).__module__.startswith("transformers") and any(c.__name__ in classes for c in type(model).__mro__)


def label_names(config: Any) -> list[str]:
    """``config.id2label`` as a list, index = the model's label (keys may be ints or strings)."""
    id2label = {int(k): str(v) for k, v in dict(getattr(config, "id2label", None) or {}).items()}
    n = int(getattr(config, "num_labels", len(id2label)) or len(id2label))
    return [id2label.get(i, f"class_{i}") for i in range(n)]


class TransformerFamily(Family):
    """What DETR and RT-DETR share (module docstring); a subclass says how its transformer runs.

    Args:
        processor: the model's image processor (default: the family's checkpoint default).
        threshold: ``post_process_object_detection``'s score threshold (:data:`DEFAULT_THRESHOLD`).
    """

    classes: ClassVar[tuple[str, ...]] = ()
    """Class names of the transformers models the family explains."""
    has_relevance: ClassVar[bool] = False
    """Whether :meth:`~.family.Family.attention_relevance` is implemented."""
    recomputed: ClassVar[dict[str, str]] = {}
    """Per recorded call, the keyword argument a replay recomputes from the levels (not kept)."""
    box_local_gradients = True

    def __init__(self, processor: Any = None, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.processor = processor
        self.threshold = float(threshold)
        self.tap = Tap()
        self._default: Any = None
        self._slot: tuple[weakref.ref[Capture], bool, Replay] | None = None

    def configured(self, processor: Any = None, threshold: float | None = None) -> TransformerFamily:
        """A new family of the same kind with its own processor and threshold."""
        return type(self)(processor if processor is not None else self.processor, self.threshold if threshold is None else threshold)

    # -- what a subclass provides -------------------------------------------------------------------
    def default_processor(self, transformers: Any) -> Any:
        """The image processor the family's checkpoints ship with."""
        raise NotImplementedError

    def capture_modules(self, model: Any) -> tuple[list[nn.Module], dict[str, nn.Module]]:
        """``(modules whose outputs are the levels, name → module whose keyword arguments a replay needs)``."""
        raise NotImplementedError

    def queries(self, logits: torch.Tensor, results: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        """Per image, the query of each row of ``post_process_object_detection``'s ``results``."""
        raise NotImplementedError

    def replay(self, model: Any, capture: Capture, attentions: bool) -> Replay:
        """Re-run the transformer from leaves of ``capture.levels`` and the arguments kept in its memo."""
        raise NotImplementedError

    # -- Family -------------------------------------------------------------------------------------
    def matches(self, model: nn.Module) -> bool:
        return is_transformers_model(model, self.classes)

    def class_names(self, model: nn.Module) -> list[str] | None:
        return ["__background__", *label_names(getattr(model, "config", None))]

    def num_classes(self, model: nn.Module) -> int | None:
        return len(label_names(getattr(model, "config", None))) + 1

    def image_processor(self) -> Any:
        """The processor images go through: the one given, else the family's default (built once)."""
        if self.processor is not None:
            return self.processor
        if self._default is None:
            self._default = self.default_processor(import_transformers())
        return self._default

    def hook_points(self, detector: DetectorView) -> dict[str, HookPoint]:
        return {"features": HookPoint(self.tap, "input", take=lambda a: a[0].levels), "forward": HookPoint(self.tap, "input", take=lambda a: a[0])}

    def run(self, detector: DetectorView, images: list[torch.Tensor]) -> list[RawOutput]:
        """Detections of ``images`` (``FloatTensor[3, H, W]`` in ``[0, 1]``); same-size images share a forward."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(tuple(image.shape), []).append(i)
        outputs: dict[int, RawOutput] = {}
        for members in groups.values():
            outputs.update(zip(members, self._forward(detector, [images[i] for i in members]), strict=True))
        return [outputs[i] for i in range(len(images))]

    def _forward(self, detector: DetectorView, images: list[torch.Tensor]) -> list[RawOutput]:
        processor = self.image_processor()
        pixels = [to_uint8(im) for im in images]
        inputs = processor(images=pixels, return_tensors="pt", input_data_format="channels_first")
        inputs = {k: v.to(detector.device) for k, v in inputs.items()}
        levels, calls = self.capture_modules(detector.model)
        with recording(levels, calls) as (outputs, kwargs_of):
            out = detector.model(**inputs)
        sizes = [(int(p.shape[-2]), int(p.shape[-1])) for p in pixels]
        results = processor.post_process_object_detection(out, threshold=self.threshold, target_sizes=sizes)
        canvas = (int(inputs["pixel_values"].shape[-2]), int(inputs["pixel_values"].shape[-1]))
        mask = inputs.get("pixel_mask")  # DETR: the valid block, top left; RT-DETR: none (stretched to the canvas)
        resized = [canvas] * len(pixels) if mask is None else [(int(m.any(1).sum()), int(m.any(0).sum())) for m in mask]
        self.tap(Forward([outputs[i] for i in sorted(outputs)], canvas, resized, self.queries(out.logits.detach(), results), kwargs_of))
        return [{"boxes": r["boxes"].detach(), "labels": r["labels"].long() + 1, "scores": r["scores"].detach()} for r in results]

    def geometry(self, captured: dict[str, Any], original: tuple[int, int], index: int = 0) -> Geometry:
        record = captured.get("forward")
        return Geometry(original, record.resized[index], record.canvas) if isinstance(record, Forward) else Geometry.identity(*original)

    def memo(self, detector: DetectorView, captured: dict[str, Any], capture: Capture) -> dict[str, Any]:
        record = captured.get("forward")
        if not isinstance(record, Forward):
            return {}
        calls = {name: {k: v for k, v in kw.items() if k != self.recomputed.get(name)} for name, kw in record.calls.items()}
        return {"queries": record.queries[0].cpu(), "calls": calls}

    def replay_for(self, detector: DetectorView, capture: Capture, attentions: bool = False) -> Replay:
        """The replay of ``capture`` (one kept, while its capture lives: the last image's; one with attentions also serves gradients)."""
        if self._slot is not None:
            ref, has_attentions, replay = self._slot
            if ref() is capture and (has_attentions or not attentions):
                return replay
        if "calls" not in capture.memo:
            raise DetectorRuntimeError(f"the capture of {detector.name} holds no transformer inputs; was it made by CamEngine.analyze?")
        self._slot = None  # free the previous graph first
        replay = self.replay(detector.model, capture, attentions)
        self._slot = (weakref.ref(capture, self._release), attentions, replay)
        return replay

    def _release(self, ref: weakref.ref[Capture]) -> None:
        """Drop the kept replay (its autograd graph) once its capture is gone."""
        if self._slot is not None and self._slot[0] is ref:
            self._slot = None

    def query_of(self, capture: Capture, detection: Detection) -> int:
        return int(capture.memo["queries"][detection.index])  # the decoder query the detection came from

    def box_gradients(self, detector: DetectorView, capture: Capture, detection: Detection) -> OrderedDict[str, torch.Tensor] | None:
        """``d logit / d level`` of the detection's class *logit* (not its probability, which saturates)."""
        if "queries" not in capture.memo:
            return None
        return self.replay_for(detector, capture).gradients(self.query_of(capture, detection), detection.label - 1)

    def local_scorer(self, detector: DetectorView, capture: Capture, detection: Detection) -> LocalScorer:
        others = "eigengradcam, hirescam, layercam, attention relevance or drise" if self.has_relevance else "eigengradcam, hirescam, layercam or drise"
        raise DetectorRuntimeError(f"AblationCAM is not available for the {self.name} family (its score depends on every position "
                                   f"through attention); use {others}")

    def fill_colour(self, detector: DetectorView) -> np.ndarray:
        """The processor's normalisation mean when it normalises, else mid grey."""
        processor = self.image_processor()
        mean = getattr(processor, "image_mean", None) if getattr(processor, "do_normalize", False) else None
        if mean is not None and len(mean) == 3:
            return np.clip(np.round(np.asarray(mean, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
        return np.array([128, 128, 128], dtype=np.uint8)


def checked_queries(name: str, rule: str, queries: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor,
                    result: dict[str, torch.Tensor]) -> torch.Tensor:
    """``queries`` when ``labels`` / ``scores`` (the rule's rows) are the processor's ``result``; else a clear error."""
    same = len(labels) == len(result["labels"]) and bool(torch.equal(labels.cpu(), result["labels"].cpu()))
    if not (same and torch.allclose(scores.cpu(), result["scores"].detach().cpu(), rtol=1e-6, atol=0.0)):
        raise DetectorRuntimeError(
            f"post_process_object_detection's detections do not follow the {name} rule ({rule}); was the image processor's "
            "post-processing changed? The plugin must know which decoder query each detection came from"
        )
    return queries


# -- loading -----------------------------------------------------------------------------------------


def hf_detector(model: nn.Module, processor: Any = None, threshold: float = DEFAULT_THRESHOLD, name: str | None = None,
                class_names: Sequence[str] | None = None, meta: dict[str, Any] | None = None) -> Detector:
    """Wrap a transformers DETR / RT-DETR detector with its image processor (default: the family's).

    A conftest or ``package.module:callable`` returns it to use a fine-tuned model's own processor.

    Raises:
        ModelLoadError: ``model`` is not a detector of a transformers family this package explains.
    """
    detector = Detector.wrap(model, class_names, name=name, meta=meta)
    if not isinstance(detector.family, TransformerFamily):
        raise ModelLoadError(f"{type(model).__name__} is not a transformers detector this plugin explains "
                             f"(handled: {', '.join(HANDLED_TYPES.values())})")
    detector.family = detector.family.configured(processor, threshold)
    return detector


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path} is not a readable JSON config ({type(exc).__name__}: {exc}); re-save the model with save_pretrained") from exc
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in HANDLED_TYPES:
        raise ModelLoadError(f"{path} says model_type {model_type!r}; the Hugging Face family explains "
                             f"{', '.join(HANDLED_TYPES)} ({', '.join(HANDLED_TYPES.values())})")
    return config


def _load_folder(spec: str, weights: str | None, offline: bool) -> Detector:
    folder = Path(spec).expanduser()
    if weights is not None:
        raise ModelLoadError(f"--camaudit-weights does not apply to --camaudit-model={spec} (a Hugging Face folder carries its own "
                             "weights); drop --camaudit-weights")
    config = _read_config(folder)
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise ModelLoadError(f"{folder} has a config.json but no weights: expected {folder / WEIGHT_FILES[0]} (or "
                             f"{', '.join(WEIGHT_FILES[1:])}) as written by save_pretrained")
    transformers = import_transformers()
    try:
        model = transformers.AutoModelForObjectDetection.from_pretrained(folder, attn_implementation="eager", local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"cannot load the {config['model_type']} detector in {folder} ({type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}); check its weights file and config.json") from exc
    processor, source = None, "the family's default (no preprocessor_config.json)"
    if (folder / "preprocessor_config.json").is_file():
        try:
            processor = transformers.AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(f"{folder / 'preprocessor_config.json'} cannot be read as an image processor "
                                 f"({type(exc).__name__}: {exc})") from exc
        source = str(folder / "preprocessor_config.json")
    return hf_detector(model, processor, name=folder.name or str(folder), meta={"folder": str(folder), "processor": source})


LOADERS = (
    Loader("directory", lambda spec: (Path(spec).expanduser() / "config.json").is_file(), _load_folder,
           "Hugging Face save_pretrained folder (DETR, RT-DETR)"),
)
