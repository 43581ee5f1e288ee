"""Deformable DETR (transformers' ``DeformableDetrForObjectDetection``, ``model_type`` ``deformable_detr``).

The target layer is ``model.model.input_proj``: one convolution + group norm per level (the
backbone's stride-8 / 16 / 32 maps and one extra stride-64 level at the default four), whose
outputs, flattened and concatenated, are the deformable encoder's input. A detection is a
``(query, class)`` pair of ``DeformableDetrImageProcessor``'s rule: sigmoid, the top 100 over
queries × classes above the threshold (:data:`~.family.SIGMOID_TOP_100`).

**Per-box gradients** re-run the encoder, the decoder and the class head from detached leaves of
the captured levels (:class:`~.shapes.EncoderDecoderFamily`). The model's logits are
``class_embed[decoder_layers - 1]`` of the decoder's output (not ``class_embed[-1]``: with
``two_stage`` an extra head for the encoder's proposals sits at the end). Refined reference points
(``with_box_refine``) and two-stage proposals are detached by the model itself: constants of the graph.
With more feature levels than backbone outputs + 1, level ``k + 1`` is computed from level ``k``;
the gradient with respect to each level then holds the later ones fixed (as any hooked-leaf gradient).

**No attention relevance**: the encoder and decoder read the image through deformable attention
(sampling points, not attention matrices over tokens); the error names the alternatives.

**Processor**: ``DeformableDetrImageProcessor`` (shortest side 800, longest 1333, pad bottom/right
with a pixel mask), built offline when a folder has none. Hub checkpoints use a timm ResNet-50:
loading such a folder needs timm (see :mod:`.folders`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..handles import Handles
from .family import SIGMOID_TOP_100
from .shapes import EncoderDecoderFamily

HANDLES = Handles(
    name="deformable-detr",
    classes=("DeformableDetrForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("deformable_detr",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class DeformableDetrFamily(EncoderDecoderFamily):
    """transformers' Deformable DETR; see the module docstring."""

    name = "deformable-detr"
    handles = HANDLES
    query_rule = SIGMOID_TOP_100

    def default_processor(self, transformers: Any) -> Any:
        return transformers.DeformableDetrImageProcessor()

    def level_modules(self, model: Any) -> list[nn.Module]:
        return list(model.model.input_proj)

    def final_logits(self, model: Any, decoder_output: Any) -> torch.Tensor:
        head = model.class_embed[model.config.decoder_layers - 1]
        logits: torch.Tensor = head(decoder_output.last_hidden_state)
        return logits


FAMILY = DeformableDetrFamily()
