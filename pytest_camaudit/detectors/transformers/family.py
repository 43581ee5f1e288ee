"""What every transformers DETR-style family shares: running, capture, labels, query rules, the replay.

The families are one module each beside this one (:mod:`.detr`, :mod:`.rtdetr`, :mod:`.d_fine`…); each
declares its model types and classes (``HANDLES``) and subclasses :class:`TransformerFamily` (mostly
through one of the two replay shapes of :mod:`.shapes`) with where its maps are, how its transformer
re-runs, and its declarations: its :class:`QueryRule` (how ``post_process_object_detection`` picks its
rows) or ``traced_by_tags`` (:func:`tagged_queries`, for processors that re-sort their rows), its
``decoder_layer`` (whose logits are the model's) and, where the canvas is constrained, :meth:`TransformerFamily.inputs`.

**Labels.** transformers' labels are 0-based without background; the plugin keeps index 0 for
``__background__`` (:meth:`Detector.label_index` never returns it). So, as for ultralytics, the
plugin's label is the model's **+ 1**, ``class_names = ["__background__", *id2label]``: every class
is reachable, and ``detection.label - 1`` is the model's id (COCO DETR's ``person``, 1, is label 2).

**Running** (:meth:`TransformerFamily.run`). Images ``FloatTensor[3, H, W]`` in ``[0, 1]`` go back
to ``uint8`` (exact for every image the engine loads), through the image processor, the model and
the processor's own ``post_process_object_detection`` at :attr:`TransformerFamily.threshold` with
the original sizes: its boxes (original pixels, not clipped), labels and scores, in its order. DETR's
processor pads a mixed-size batch, which changes the numbers, so only same-size images share a
forward (then equal to one at a time up to float rounding, like any batch).

**Capture** (:meth:`TransformerFamily.hook_points`: the engine's hooks, removed in ``finally``). The
maps the transformer consumes (the levels), the processor's canvas and pixel mask, the class logits
and the keyword arguments the model passes its encoder / decoder. Right after the forward each
detection is traced to its decoder query by the family's rule, checked against the detections.
Gradients and relevance re-run only the transformer from detached leaves of the captured maps
(:class:`Replay`, kept on the capture for the image's other boxes): the full forward's gradients
without an autograd forward.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ...datatypes import Detection, Geometry
from ...errors import DetectorRuntimeError
from ..family import Capture, DetectorView, Family, HookPoint, LocalScorer, RawOutput
from .runtime import import_transformers, label_names, to_uint8

DEFAULT_THRESHOLD = 0.05
"""Score above which ``post_process_object_detection`` keeps a detection (torchvision's own
``box_score_thresh``): assertions then apply ``--camaudit-score-threshold`` as for any detector."""

_OUTPUT_FLAGS = ("output_attentions", "output_hidden_states", "return_dict")
"""Keyword arguments a replay sets itself (not kept from the recorded call)."""

Rows = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(queries LongTensor[N], labels LongTensor[N] (the model's, 0-based), scores FloatTensor[N])``."""


@dataclass(frozen=True)
class QueryRule:
    """How ``post_process_object_detection`` picks its rows from one image's class logits ``FloatTensor[Q, K]``.

    Attributes:
        description: the rule in words (error messages).
        rows: ``(logits, threshold) → (queries, labels, scores)`` (:data:`Rows`), in the processor's order.
    """

    description: str
    rows: Callable[[torch.Tensor, float], Rows]


def _softmax_rows(logits: torch.Tensor, threshold: float) -> Rows:
    scores, labels = torch.softmax(logits, -1)[..., :-1].max(-1)
    q = torch.nonzero(scores > threshold).flatten()
    return q, labels[q], scores[q]


def _sigmoid_top_k_rows(logits: torch.Tensor, threshold: float, k: int | None = None) -> Rows:
    n_queries, n_classes = logits.shape[-2:]
    scores, index = torch.topk(torch.sigmoid(logits).flatten(), min(k or n_queries, n_queries * n_classes), dim=-1)
    keep = scores > threshold
    rows = index[keep]
    return rows // n_classes, rows % n_classes, scores[keep]


def _sigmoid_top_100_rows(logits: torch.Tensor, threshold: float) -> Rows:
    return _sigmoid_top_k_rows(logits, threshold, 100)


SOFTMAX_WITHOUT_NO_OBJECT = QueryRule("softmax without 'no object', score > threshold, query order", _softmax_rows)
"""DETR's processor: softmax, drop the last ("no object") column, best class, ``score > threshold`` in query order."""

SIGMOID_TOP_K = QueryRule("sigmoid, top-k over queries x classes, score > threshold", _sigmoid_top_k_rows)
"""RT-DETR's processor (focal loss): sigmoid, top ``Q`` over the flattened ``Q × K`` scores,
query = index // K, label = index % K, ``score > threshold``; one query may appear with several labels."""

SIGMOID_TOP_100 = QueryRule("sigmoid, top-100 over queries x classes, score > threshold", _sigmoid_top_100_rows)
"""Conditional / Deformable DETR's processor (and the processors their successors reuse): as
:data:`SIGMOID_TOP_K` but the top ``min(100, Q × K)`` rows, whatever the number of queries."""


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


def tag_boxes(pred_boxes: torch.Tensor) -> torch.Tensor:
    """``FloatTensor[B, Q, n]`` boxes whose every coordinate decodes to the query's index: ``cx = cy = q`` and
    zero size (``n = 4``), or zero corner offsets stored as ``+0.5`` (PP-DocLayoutV4's ``n = 10`` quads)."""
    b, q, n = pred_boxes.shape
    tags = torch.arange(q, dtype=pred_boxes.dtype, device=pred_boxes.device)[None, :, None].expand(b, q, n).clone()
    tags[..., 2:] = 0.0 if n == 4 else 0.5
    return tags


def tagged_queries(name: str, processor: Any, output: Any, threshold: float, result: dict[str, torch.Tensor]) -> torch.Tensor:
    """``LongTensor[N]``: the query of each row of ``processor.post_process_object_detection`` for one image's ``output``.

    The **tag rule**, for any processor (it selects, thresholds, re-sorts as it likes): the same output
    is post-processed again with ``pred_boxes`` replaced by :func:`tag_boxes` at target size ``(1, 1)``,
    so every returned box *is* its row's query index; its labels and scores must be ``result``'s
    (the model's labels, 0-based, and scores). Masks (PP-DocLayoutV3) are cut to 1×1 for the re-run.
    """
    fields = {**output, "pred_boxes": tag_boxes(output["pred_boxes"])}
    if fields.get("out_masks") is not None:
        fields["out_masks"] = fields["out_masks"][..., :1, :1]
    (rows,) = processor.post_process_object_detection(type(output)(**fields), threshold=threshold, target_sizes=[(1, 1)])
    boxes = rows["boxes"].detach().cpu()
    boxes = boxes.reshape(boxes.shape[0], -1) if boxes.numel() else boxes.reshape(0, 1)
    queries = boxes[:, 0].round().long()
    if not torch.allclose(boxes, queries[:, None].to(boxes.dtype).expand_as(boxes), atol=1e-3):
        raise DetectorRuntimeError(f"the {name} processor's post-processing moved the tagged boxes; the plugin cannot trace "
                                   "its detections to decoder queries")
    return checked_queries(name, "the tag rule (post-processing re-run on query-index boxes)", queries,
                           rows["labels"].long().cpu(), rows["scores"].detach().cpu(), result)


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


def _kwargs(call: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
    return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in call[1].items() if k not in _OUTPUT_FLAGS}


def _inputs(call: tuple[Any, dict[str, Any]]) -> tuple[tuple[int, int], torch.Tensor | None]:
    pixels, mask = call[1]["pixel_values"], call[1].get("pixel_mask")  # DETR: the valid block, top left; RT-DETR: none
    return (int(pixels.shape[-2]), int(pixels.shape[-1])), (mask.detach() if isinstance(mask, torch.Tensor) else None)


@dataclass(frozen=True, eq=False)
class TransformerFamily(Family):
    """What the transformers families share (module docstring): frozen settings, no per-image state.

    Attributes:
        processor: the model's image processor (``None`` until :meth:`for_model` builds the family's default).
        threshold: ``post_process_object_detection``'s score threshold (:data:`DEFAULT_THRESHOLD`).
    """

    has_relevance: ClassVar[bool] = False
    """Whether :meth:`~..family.Family.attention_maps` is implemented."""
    recomputed: ClassVar[dict[str, str]] = {}
    """Per recorded call, the keyword argument a replay recomputes from the levels (not kept)."""
    query_rule: ClassVar[QueryRule] = SOFTMAX_WITHOUT_NO_OBJECT
    """How ``post_process_object_detection`` picks its rows (each detection's decoder query)."""
    traced_by_tags: ClassVar[bool] = False
    """Trace detections by :func:`tagged_queries` (any processor, e.g. one that re-sorts its rows) instead of :attr:`query_rule`."""
    decoder_layer: ClassVar[int | str] = -1
    """Which decoder layer's logits are the model's: an index, or the name of the config attribute holding it (``"eval_idx"``)."""
    box_local_gradients = True
    processor: Any = None
    threshold: float = DEFAULT_THRESHOLD

    # -- what a subclass provides -------------------------------------------------------------------
    def default_processor(self, transformers: Any) -> Any:
        """The image processor the family's checkpoints ship with, built offline."""
        raise NotImplementedError

    def level_modules(self, model: Any) -> list[nn.Module]:
        """The modules whose outputs are the levels (the maps the transformer consumes), in order."""
        raise NotImplementedError

    def call_modules(self, model: Any) -> dict[str, nn.Module]:
        """Name → module whose keyword arguments a replay needs (``"encoder"``, ``"decoder"``)."""
        raise NotImplementedError

    def replay(self, model: Any, capture: Capture, attentions: bool) -> Replay:
        """Re-run the transformer from leaves of ``capture.levels`` and the arguments kept in its memo."""
        raise NotImplementedError

    # -- settings -----------------------------------------------------------------------------------
    def configured(self, processor: Any = None, threshold: float | None = None) -> TransformerFamily:
        """A new family of the same kind with its own processor and threshold (``None``: keep this one's)."""
        return dataclasses.replace(self, processor=processor if processor is not None else self.processor,
                                   threshold=self.threshold if threshold is None else float(threshold))

    def for_model(self, model: nn.Module) -> TransformerFamily:
        """This family with its default processor when it has none."""
        return self if self.processor is not None else dataclasses.replace(self, processor=self.image_processor())

    def inputs(self, processor: Any, images: list[torch.Tensor], model: Any) -> Any:
        """The model's inputs for ``images`` (``uint8 [3, H, W]``): the processor's ``BatchFeature``.

        A family whose model needs a canvas the processor may not give (RF-DETR's window grid) overrides
        this, e.g. to pad with the processor's own ``pad_size``; geometry follows ``pixel_mask``.
        """
        return processor(images=images, return_tensors="pt", input_data_format="channels_first")

    def image_processor(self) -> Any:
        """The processor images go through: the one set, else the family's default (built now)."""
        return self.processor if self.processor is not None else self.default_processor(import_transformers())

    def decoder_layer_index(self, model: Any) -> int:
        """:attr:`decoder_layer` as an index (read from the model's config when it names an attribute)."""
        layer = self.decoder_layer
        return int(getattr(model.config, layer)) if isinstance(layer, str) else layer

    # -- Family -------------------------------------------------------------------------------------
    def class_names(self, model: nn.Module) -> list[str] | None:
        return ["__background__", *label_names(getattr(model, "config", None))]

    def num_classes(self, model: nn.Module) -> int | None:
        return len(label_names(getattr(model, "config", None))) + 1

    def hook_points(self, detector: DetectorView) -> dict[str, HookPoint]:
        model: Any = detector.model
        points = {f"level:{i}": HookPoint(m) for i, m in enumerate(self.level_modules(model))}
        points["inputs"] = HookPoint(model, "call", take=_inputs)
        points["logits"] = HookPoint(model, take=lambda out: out.logits.detach())
        points.update({f"call:{n}": HookPoint(m, "call", take=_kwargs) for n, m in self.call_modules(model).items()})
        if self.traced_by_tags:
            points["output"] = HookPoint(model)
        return points

    def features(self, captured: dict[str, Any]) -> Any:
        """The levels, in :meth:`level_modules` order."""
        keys = sorted((k for k in captured if k.startswith("level:")), key=lambda k: int(k.split(":")[1]))
        return [captured[k] for k in keys] or None

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
        inputs = self.inputs(processor, pixels, detector.model)
        out = detector.model(**{k: v.to(detector.device) for k, v in inputs.items()})
        sizes = [(int(p.shape[-2]), int(p.shape[-1])) for p in pixels]
        results = processor.post_process_object_detection(out, threshold=self.threshold, target_sizes=sizes)
        return [{"boxes": r["boxes"].detach(), "labels": r["labels"].long() + 1, "scores": r["scores"].detach()} for r in results]

    def geometry(self, captured: dict[str, Any], original: tuple[int, int], index: int = 0) -> Geometry:
        if "inputs" not in captured:
            return Geometry.identity(*original)
        canvas, mask = captured["inputs"]
        resized = canvas if mask is None else (int(mask[index].any(1).sum()), int(mask[index].any(0).sum()))
        return Geometry(original, resized, canvas)

    def memo(self, detector: DetectorView, captured: dict[str, Any], capture: Capture) -> dict[str, Any]:
        names = [k.removeprefix("call:") for k in captured if k.startswith("call:")]
        if "logits" not in captured or not names:
            return {}
        calls = {n: {k: v for k, v in captured[f"call:{n}"].items() if k != self.recomputed.get(n)} for n in names}
        if self.traced_by_tags:
            result = self._result(capture.detections, torch.float32)
            rows = tagged_queries(self.name, self.image_processor(), captured["output"], self.threshold, result)
            return {"queries": self.decoder_queries(detector.model, captured["output"], rows).cpu(), "calls": calls}
        return {"queries": self.queries(captured["logits"][0], capture.detections).cpu(), "calls": calls}

    def decoder_queries(self, model: Any, output: Any, rows: torch.Tensor) -> torch.Tensor:
        """The decoder query of each of ``output.logits``' ``rows`` (the same, unless the model permutes its queries)."""
        return rows

    @staticmethod
    def _result(detections: list[Detection], dtype: torch.dtype) -> dict[str, torch.Tensor]:
        return {"labels": torch.tensor([d.label - 1 for d in detections], dtype=torch.long),
                "scores": torch.tensor([d.score for d in detections], dtype=dtype)}

    def queries(self, logits: torch.Tensor, detections: list[Detection]) -> torch.Tensor:
        """``LongTensor[N]``: the decoder query of each detection, by :attr:`query_rule`, checked against them."""
        queries, labels, scores = self.query_rule.rows(logits, self.threshold)
        result = self._result(detections, scores.dtype)
        return checked_queries(self.name, self.query_rule.description, queries, labels, scores, result)

    def replay_for(self, detector: DetectorView, capture: Capture, attentions: bool = False) -> Replay:
        """The replay of ``capture``, kept on it (``capture.graphs``) for its other boxes; one with attentions also serves gradients."""
        kept = capture.graphs.get("replay")
        if kept is not None and (kept[0] or not attentions):
            replay: Replay = kept[1]
            return replay
        if "calls" not in capture.memo:
            raise DetectorRuntimeError(f"the capture of {detector.name} holds no transformer inputs; was it made by CamEngine.analyze?")
        capture.graphs.pop("replay", None)  # free the previous graph first
        replay = self.replay(detector.model, capture, attentions)
        capture.graphs["replay"] = (attentions, replay)
        return replay

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
