"""YOLOS (transformers' ``YolosForObjectDetection``, ``model_type`` ``yolos``): a ViT with detection tokens, no map.

The encoder's sequence is ``[CLS, H/p × W/p patch tokens (row-major), D detection tokens]``; the
logits are ``class_labels_classifier(layernorm(last layer)[:, -D:])``, so a detection's "query" is
its detection token. ``YolosImageProcessor``'s rule is DETR's (softmax, the "no object" column
dropped, query order: :data:`~.family.SOFTMAX_WITHOUT_NO_OBJECT`); it floors resized sides to
multiples of 16, so the patch grid covers the canvas exactly.

**Target: patch tokens laid back on their grid.** YOLOS has no convolutional map. The patch tokens
at the *output* of the last layer never reach a detection token (only detection tokens go to the
heads: their gradient is zero), so the target is the output of ``model.vit.encoder.layer[-2]``: its
patch tokens reshaped to ``FloatTensor[1, C, H/p, W/p]`` (the grid from the encoder's ``height`` /
``width`` arguments; CLS and detection tokens left out). EigenCAM is the first principal
component of those tokens; **per-box gradients** replay the last layer (with the mid-position
embedding the encoder adds after layer ``L - 2``, recomputed), the final layer norm and the class
head on ``[CLS, leaf tokens, detection tokens]`` (CLS and detection tokens at that layer are
recorded: constants): the full forward's gradient. Needs at least two encoder layers.

**Attention relevance applies**, with Chefer et al.'s single-stream rule (eq. 6 alone, as for a
ViT): ``R = Π_l (I + Ā_l)`` over the whole sequence, the detection token's row over the patch
tokens' columns (:func:`pytest_camaudit.methods.attention.self_attention_rule`). The encoder-decoder
rules of DETR do not apply (no decoder, no cross-attention). The relevance replays every layer from
the recorded embedding output, collecting the attention probabilities with temporary hooks (eager
attention only; removed in ``finally``).

**Processor**: ``YolosImageProcessor()``, built offline when a folder has none. YOLOS takes no pixel
mask: a padded batch would be seen as content, which is why images run one size at a time.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...datatypes import Detection
from ...errors import DetectorRuntimeError
from ..family import AttentionMaps, Capture, DetectorView, HookPoint
from ..handles import Handles
from .family import SOFTMAX_WITHOUT_NO_OBJECT, Replay, TransformerFamily
from .shapes import leaves_of

HANDLES = Handles(
    name="yolos",
    classes=("YolosForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("yolos",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


def _patch(config: Any) -> int:
    p = config.patch_size
    return int(p if isinstance(p, int) else p[0])


def _tokens(out: Any) -> torch.Tensor:
    tensor: torch.Tensor = out[0] if isinstance(out, tuple) else out
    return tensor


def to_map(tokens: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``FloatTensor[B, 1 + HW + D, C]`` → ``FloatTensor[B, C, H, W]``: the patch tokens on their ``grid``."""
    gh, gw = grid
    return tokens[:, 1 : 1 + gh * gw].transpose(1, 2).reshape(tokens.shape[0], tokens.shape[-1], gh, gw)


@dataclass(frozen=True, eq=False)
class YolosFamily(TransformerFamily):
    """transformers' YOLOS; see the module docstring."""

    name = "yolos"
    handles = HANDLES
    query_rule = SOFTMAX_WITHOUT_NO_OBJECT
    has_relevance = True

    def default_processor(self, transformers: Any) -> Any:
        return transformers.YolosImageProcessor()

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        layers = getattr(getattr(getattr(model, "vit", None), "encoder", None), "layer", None)
        return layers[-2] if isinstance(layers, nn.ModuleList) and len(layers) >= 2 else None

    def level_modules(self, model: Any) -> list[nn.Module]:
        return [model.vit.encoder.layer[-2]]

    def call_modules(self, model: Any) -> dict[str, nn.Module]:
        return {"encoder": model.vit.encoder}

    def hook_points(self, detector: DetectorView) -> dict[str, HookPoint]:
        """The base points, with the level as a map (its grid from the encoder's call) and the raw tokens kept."""
        model: Any = detector.model
        if len(model.vit.encoder.layer) < 2:
            raise DetectorRuntimeError(f"{detector.name} has one encoder layer: YOLOS' target (the patch tokens entering the "
                                       "last layer) would be the embeddings; use a model with at least two layers")
        patch = _patch(model.config)
        seen: dict[str, tuple[int, int]] = {}  # this capture's grid: the encoder's call comes before its layers run

        def call(c: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
            seen["grid"] = (int(c[1]["height"]) // patch, int(c[1]["width"]) // patch)
            return {"height": c[1]["height"], "width": c[1]["width"], "embeddings": c[0][0].detach()}

        points = super().hook_points(detector)
        points["level:0"] = HookPoint(model.vit.encoder.layer[-2], take=lambda out: to_map(_tokens(out), seen["grid"]))
        points["tokens"] = HookPoint(model.vit.encoder.layer[-2], take=lambda out: _tokens(out).detach())
        points["call:encoder"] = HookPoint(model.vit.encoder, "call", take=call)
        return points

    def memo(self, detector: DetectorView, captured: dict[str, Any], capture: Capture) -> dict[str, Any]:
        memo = super().memo(detector, captured, capture)
        if memo and "tokens" in captured:
            memo["tokens"] = captured["tokens"][:1]
        return memo

    def _mid(self, model: Any, calls: dict[str, Any], layer: int) -> Any:
        """The mid-position embedding the encoder adds after ``layer`` (0 without them)."""
        if not model.config.use_mid_position_embeddings:
            return 0.0
        return model.vit.encoder.interpolation((calls["height"], calls["width"]))[layer]

    def _head(self, model: Any, hidden: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = model.class_labels_classifier(model.vit.layernorm(hidden)[:, -model.config.num_detection_tokens :])
        return logits

    def replay(self, model: Any, capture: Capture, attentions: bool) -> Replay:
        """The last layer, the layer norm and the class head on ``[CLS, leaf patch tokens, detection tokens]``."""
        leaves = leaves_of(capture)
        (leaf,) = leaves.values()
        seq, calls = capture.memo["tokens"], capture.memo["calls"]["encoder"]
        layers = model.vit.encoder.layer
        with torch.enable_grad():
            n = leaf.shape[-2] * leaf.shape[-1]
            hidden = torch.cat([seq[:, :1], leaf.flatten(2).transpose(1, 2), seq[:, 1 + n :]], dim=1) + self._mid(model, calls, len(layers) - 2)
            logits = self._head(model, layers[-1](hidden))
        return Replay(leaves, logits)

    def attention_maps(self, detector: DetectorView, capture: Capture, detection: Detection) -> AttentionMaps:
        """Every layer replayed from the recorded embeddings, its attention probabilities collected (eager only)."""
        model: Any = detector.model
        implementation = getattr(model.config, "_attn_implementation", "eager")
        if implementation != "eager":
            raise DetectorRuntimeError(f"attention relevance reads YOLOS' attention maps, which {detector.name} does not return "
                                       f"with attn_implementation={implementation!r}; load the model with attn_implementation='eager'")
        calls, layers = capture.memo["calls"]["encoder"], model.vit.encoder.layer
        probs: list[torch.Tensor] = []
        handles = [layer.attention.attention.register_forward_hook(lambda m, a, out: probs.append(out[1])) for layer in layers]
        try:
            with torch.enable_grad():
                hidden = calls["embeddings"]
                for i, layer in enumerate(layers):
                    hidden = layer(hidden) + (self._mid(model, calls, i) if i < len(layers) - 1 else 0.0)
                logits = self._head(model, hidden)
        finally:
            for handle in handles:
                handle.remove()
        name, level = next(iter(OrderedDict(capture.levels).items()))
        gh, gw = int(level.shape[-2]), int(level.shape[-1])
        query, n_det = self.query_of(capture, detection), model.config.num_detection_tokens
        return AttentionMaps(name, (gh, gw), logits[0, query, detection.label - 1], probs, [], [],
                             int(hidden.shape[1]) - n_det + query, tokens=slice(1, 1 + gh * gw))


FAMILY = YolosFamily()
