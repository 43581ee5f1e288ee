"""Conditional DETR (transformers' ``ConditionalDetrForObjectDetection``, ``model_type`` ``conditional_detr``).

DETR's shape (:class:`~.shapes.EncoderDecoderFamily`): the target layer is
``model.model.input_projection`` (a 1×1 convolution of the backbone's stride-32 map), a replay re-runs
the encoder, the decoder and ``class_labels_classifier``. What differs from DETR is the processor's
rule: ``ConditionalDetrImageProcessor`` takes the sigmoid of the logits (no "no object" column) and
keeps the top 100 ``(query, class)`` pairs above the threshold (:data:`~.family.SIGMOID_TOP_100`).

**Attention relevance applies** (Chefer et al. 2021): the decoder's cross-attention is still a
softmax over the image tokens (the content and spatial halves of each head are concatenated before
the dot product), so the DETR rules of :mod:`pytest_camaudit.methods.attention` run unchanged on the
replay's encoder self-attention, decoder self-attention and cross-attention.

**Processor**: ``ConditionalDetrImageProcessor`` (shortest side 800, longest 1333, pad with a pixel
mask), built offline when a folder has none. Hub checkpoints use a timm ResNet-50 (see :mod:`.folders`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..handles import Handles
from .family import SIGMOID_TOP_100
from .shapes import EncoderDecoderFamily

HANDLES = Handles(
    name="conditional-detr",
    classes=("ConditionalDetrForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("conditional_detr",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class ConditionalDetrFamily(EncoderDecoderFamily):
    """transformers' Conditional DETR; see the module docstring."""

    name = "conditional-detr"
    handles = HANDLES
    query_rule = SIGMOID_TOP_100
    has_relevance = True

    def default_processor(self, transformers: Any) -> Any:
        return transformers.ConditionalDetrImageProcessor()

    def level_modules(self, model: Any) -> list[nn.Module]:
        return [model.model.input_projection]


FAMILY = ConditionalDetrFamily()
