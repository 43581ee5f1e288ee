"""LW-DETR (transformers' ``LwDetrForObjectDetection``, ``model_type`` ``lw_detr``): a windowed ViT, no encoder.

The target layer is ``model.model.backbone.projector.scale_layers``: one projector per entry of
``config.projector_scale_factors`` (2.0 → stride 8, 1.0 → 16, 0.5 → 32), whose outputs, flattened and
concatenated, are the decoder's memory (there is no transformer encoder). A replay
(:class:`~.shapes.DecoderFamily`) re-runs the decoder and ``model.class_embed`` of its last hidden
state; the model detaches its two-stage proposals and learns its query features, so the replay's
gradient is the full forward's. A detection is a ``(query, class)`` pair of Deformable DETR's rule
(sigmoid, top 100 over queries × classes: :data:`~.family.SIGMOID_TOP_100`).

**Input size.** The ViT reshapes its patch grid into ``sqrt(num_windows)`` windows per side, so the
canvas sides must be multiples of ``patch_size × sqrt(num_windows)`` (64 by default);
:meth:`LwDetrFamily.inputs` pads through the processor's own ``pad_size`` when they are not (see
:mod:`.rf_detr`). Default processor: ``DeformableDetrImageProcessor(size={"height": 640, "width": 640})``
(what transformers maps ``lw_detr`` to, at the checkpoints' square size).

**Configs.** ``LwDetrConfig()``'s own ``projector_scale_factors`` is empty (zero levels: its forward
raises); checkpoints set ``[1.0]`` or ``[2.0, 0.5]``, and so must a config built by hand.

**No attention relevance** (deformable cross-attention): the error names the alternatives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..handles import Handles
from .family import SIGMOID_TOP_100
from .shapes import DecoderFamily, padded_inputs

HANDLES = Handles(
    name="lw-detr",
    classes=("LwDetrForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("lw_detr",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


def window_multiple(config: Any) -> int:
    """``patch_size × sqrt(num_windows)``: the canvas multiple LW-DETR's windowed ViT needs."""
    backbone = config.backbone_config
    patch = backbone.patch_size if isinstance(backbone.patch_size, int) else backbone.patch_size[0]
    return int(patch) * max(1, math.isqrt(int(getattr(backbone, "num_windows", 1) or 1)))


@dataclass(frozen=True, eq=False)
class LwDetrFamily(DecoderFamily):
    """transformers' LW-DETR; see the module docstring."""

    name = "lw-detr"
    handles = HANDLES
    query_rule = SIGMOID_TOP_100

    def default_processor(self, transformers: Any) -> Any:
        return transformers.DeformableDetrImageProcessor(size={"height": 640, "width": 640})

    def inputs(self, processor: Any, images: list[torch.Tensor], model: Any) -> Any:
        return padded_inputs(processor, images, window_multiple(model.config))

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        try:
            layer = model.model.backbone.projector.scale_layers  # type: ignore[union-attr]
        except AttributeError:
            return None
        return layer if isinstance(layer, nn.Module) else None

    def level_modules(self, model: Any) -> list[nn.Module]:
        return list(model.model.backbone.projector.scale_layers)

    def final_logits(self, model: Any, decoder_output: Any) -> torch.Tensor:
        logits: torch.Tensor = model.class_embed(decoder_output.last_hidden_state)
        return logits


FAMILY = LwDetrFamily()
