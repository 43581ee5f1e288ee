"""DETR (transformers' ``DetrForObjectDetection``): per-box gradients and attention relevance.

The target layer is ``model.model.input_projection`` (a 1×1 convolution of the backbone's stride-32
map): its output ``FloatTensor[1, d_model, h, w]``, flattened row-major, *is* the encoder's input
sequence. A detection is a decoder query: ``post_process_object_detection`` keeps the queries whose
best real class (softmax, the last column "no object" dropped) scores above the threshold, in query
order (:data:`~.family.SOFTMAX_WITHOUT_NO_OBJECT`). What the family shares with RT-DETR
(processing, capture, labels + 1, the replay) is :mod:`.family`.

**Per-box gradients** differentiate the class *logit* ``logits[0, query, label]`` (the probability
saturates) through a replay of the encoder, the decoder and the class head from a detached leaf of
the captured map, with the keyword arguments the model passed them (the mask at stride 32, the sine
position embeddings, the query position embeddings): the same numbers as the full forward's graph.
No box-local re-score exists: every query attends to every cell, so AblationCAM is not offered.

**Attention relevance** (Chefer, Gur & Wolf, ICCV 2021; the maths is
:mod:`pytest_camaudit.methods.attention`'s): the family hands it the replay's attention maps —
the encoder's self-attention over the ``input_projection`` cells, the decoder's self-attention and
its cross-attention from queries to those cells — and the detection's class logit
(:meth:`DetrFamily.attention_maps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..handles import Handles
from .family import SOFTMAX_WITHOUT_NO_OBJECT, checked_queries
from .shapes import EncoderDecoderFamily

HANDLES = Handles(
    name="detr",
    classes=("DetrForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("detr",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


def detr_queries(logits: torch.Tensor, results: list[dict[str, torch.Tensor]], threshold: float) -> list[torch.Tensor]:
    """Per image, ``LongTensor[N]``: the query of each row of DETR's ``post_process_object_detection``
    (``logits`` ``FloatTensor[B, Q, K + 1]``; the rule: :data:`~.family.SOFTMAX_WITHOUT_NO_OBJECT`)."""
    rule = SOFTMAX_WITHOUT_NO_OBJECT
    return [checked_queries("detr", rule.description, *rule.rows(lg, threshold), result) for lg, result in zip(logits, results, strict=True)]


@dataclass(frozen=True, eq=False)
class DetrFamily(EncoderDecoderFamily):
    """transformers' DETR (``DetrForObjectDetection``); see the module docstring. The replay and the
    attention maps are :class:`~.shapes.EncoderDecoderFamily`'s (head: ``class_labels_classifier``)."""

    name = "detr"
    handles = HANDLES
    query_rule = SOFTMAX_WITHOUT_NO_OBJECT
    has_relevance = True

    def default_processor(self, transformers: Any) -> Any:
        return transformers.DetrImageProcessor()

    def level_modules(self, model: Any) -> list[nn.Module]:
        return [model.model.input_projection]


FAMILY = DetrFamily()
