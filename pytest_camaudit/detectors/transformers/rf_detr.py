"""RF-DETR (transformers' ``RfDetrForObjectDetection``, ``model_type`` ``rf_detr``): a DINOv2 backbone, one level.

The target layer is ``model.model.backbone.projector``: the C2f + LayerNorm projector on the windowed
DINOv2 backbone's patch tokens, one map at the patch stride (14; ``floor(H / 14)`` cells). Its output,
flattened, is the decoder's memory; a replay (:class:`~.shapes.DecoderFamily`) re-runs the decoder
alone and ``model.class_embed`` of its last hidden state (the model's logits). The model detaches its
two-stage proposals and its query features are learned: the replay's gradient is the full forward's.
A detection is a ``(query, class)`` pair of ``RfDetrImageProcessor``'s sigmoid top-``Q`` rule.

**Input size.** The backbone partitions the patch grid into ``num_windows × num_windows`` windows,
so the canvas' height and width must be multiples of ``patch_size × num_windows`` (56 by default);
another canvas makes the model itself raise. :meth:`RfDetrFamily.inputs` runs the processor, and
when its canvas breaks that grid runs it again with the processor's own bottom/right padding to
the next multiples (``do_pad=True, pad_size=...``, with a pixel mask): boxes stay exact (the model
normalises by the valid ratio) and maps are put back through the padding. The default processor is
the checkpoints' square stretch, ``RfDetrImageProcessor(size={"height": 560, "width": 560})``
(``RfDetrImageProcessor()``'s own default keeps the aspect ratio, which breaks the window grid).
transformers' window partition and unpartition are inverse only on square patch grids: with
``num_windows > 1`` a non-square canvas runs (padded), but the model computes on its patch tokens
permuted, and its maps show that permuted grid (docs/families/transformers.md).

**No attention relevance**: the decoder's cross-attention is deformable, and the backbone's
attention lies before the target layer; the error names the alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..handles import Handles
from .family import SIGMOID_TOP_K
from .shapes import DecoderFamily, padded_inputs

HANDLES = Handles(
    name="rf-detr",
    classes=("RfDetrForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("rf_detr",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


def window_multiple(config: Any) -> int:
    """The canvas multiple the windowed backbone needs: ``patch_size × num_windows`` (RF-DETR's)."""
    backbone = config.backbone_config
    patch = backbone.patch_size if isinstance(backbone.patch_size, int) else backbone.patch_size[0]
    return int(patch) * int(getattr(backbone, "num_windows", 1) or 1)


@dataclass(frozen=True, eq=False)
class RfDetrFamily(DecoderFamily):
    """transformers' RF-DETR; see the module docstring."""

    name = "rf-detr"
    handles = HANDLES
    query_rule = SIGMOID_TOP_K

    def default_processor(self, transformers: Any) -> Any:
        return transformers.RfDetrImageProcessor(size={"height": 560, "width": 560})

    def inputs(self, processor: Any, images: list[torch.Tensor], model: Any) -> Any:
        return padded_inputs(processor, images, window_multiple(model.config))

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        layer = getattr(getattr(getattr(model, "model", None), "backbone", None), "projector", None)
        return layer if isinstance(layer, nn.Module) else None

    def level_modules(self, model: Any) -> list[nn.Module]:
        return [model.model.backbone.projector]

    def final_logits(self, model: Any, decoder_output: Any) -> torch.Tensor:
        logits: torch.Tensor = model.class_embed(decoder_output.last_hidden_state)
        return logits


FAMILY = RfDetrFamily()
