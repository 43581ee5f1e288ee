"""RT-DETR (transformers' ``RTDetrForObjectDetection``): per-box gradients; no attention relevance.

The target layer is ``model.model.decoder_input_proj``: one 1×1 convolution + batch norm per level
(strides 8, 16, 32 at the default three levels) on the hybrid encoder's outputs. Their outputs,
flattened and concatenated, are what the decoder's deformable cross-attention samples; the levels
are ``"0"``, ``"1"``, ``"2"`` in that order. The image processor stretches every image to one canvas
(640×640 by default, no padding) and only rescales by 1/255.

A detection is one ``(query, class)`` pair: ``post_process_object_detection`` takes the sigmoid of
every query's class logits and keeps the top ``num_queries`` over queries × classes above the
threshold, so one query may appear with several labels.

**Per-box gradients** differentiate the class *logit* through a replay of the decoder alone from
detached leaves of the captured levels, with the keyword arguments the model passed it. RT-DETR
itself detaches everything else the decoder receives (the selected query features, the initial
reference points, each layer's refined points), so this is the full forward's gradient exactly.
No box-local re-score exists (every query's attention reaches every level), so AblationCAM is not
offered.

**No attention relevance.** Chefer et al.'s rules propagate relevance through attention matrices
over image tokens; RT-DETR's decoder reads the image through *deformable* attention (a few learned
sampling points per query, head and level) and its encoder mixes the levels with convolutions,
so there is no token-to-token attention to roll out (:meth:`RtDetrFamily.attention_maps` says so). An adaptation (splatting the sampling weights)
would be a new method, not the paper's; the gradient methods explain RT-DETR instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..handles import Handles
from .family import SIGMOID_TOP_K, checked_queries
from .shapes import DecoderFamily

HANDLES = Handles(
    name="rt-detr",
    classes=("RTDetrForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("rt_detr",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


def rtdetr_queries(logits: torch.Tensor, results: list[dict[str, torch.Tensor]], threshold: float) -> list[torch.Tensor]:
    """Per image, ``LongTensor[N]``: the query of each row of RT-DETR's ``post_process_object_detection``
    (``logits`` ``FloatTensor[B, Q, K]``; the rule: :data:`~.family.SIGMOID_TOP_K`)."""
    rule = SIGMOID_TOP_K
    return [checked_queries("rt-detr", rule.description, *rule.rows(lg, threshold), result) for lg, result in zip(logits, results, strict=True)]


@dataclass(frozen=True, eq=False)
class RtDetrFamily(DecoderFamily):
    """transformers' RT-DETR (``RTDetrForObjectDetection``); see the module docstring. Levels, replay and
    the relevance error are :class:`~.shapes.DecoderFamily`'s (logits: the last decoder layer's)."""

    name = "rt-detr"
    handles = HANDLES
    query_rule = SIGMOID_TOP_K
    decoder_layer = -1

    def default_processor(self, transformers: Any) -> Any:
        return transformers.RTDetrImageProcessor()


FAMILY = RtDetrFamily()
