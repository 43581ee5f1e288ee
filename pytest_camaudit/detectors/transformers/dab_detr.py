"""DAB-DETR (transformers' ``DabDetrForObjectDetection``, ``model_type`` ``dab-detr``).

DETR's shape (:class:`~.shapes.EncoderDecoderFamily`): the target layer is
``model.model.input_projection`` (1×1 convolution of the stride-32 map), a replay re-runs the encoder
and the decoder; the model's logits are ``class_embed`` of the decoder's last intermediate hidden
state. The decoder's queries are dynamic anchor boxes refined per layer; the model detaches each
refined anchor, so they are constants of the graph and the replay's gradient is the full forward's.

**Attention relevance applies** (Chefer et al. 2021): cross-attention is a softmax over the image
tokens (content and anchor-modulated positional halves concatenated per head); the DETR rules of
:mod:`pytest_camaudit.methods.attention` run unchanged (with ``num_patterns > 0`` the queries are
``num_queries × num_patterns``).

**Processor.** ``dab-detr`` is not in transformers' auto image-processor map: the checkpoints ship a
``ConditionalDetrImageProcessor`` (sigmoid top-100 rule, :data:`~.family.SIGMOID_TOP_100`), also the
default built here offline. A folder whose ``preprocessor_config.json`` names another processor is
run through that one (its ``post_process_object_detection``): the query rule must then be that
processor's, which this family checks against the detections (a clear error if they differ).
Hub checkpoints use a timm ResNet-50 (see :mod:`.folders`).
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
    name="dab-detr",
    classes=("DabDetrForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("dab-detr",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class DabDetrFamily(EncoderDecoderFamily):
    """transformers' DAB-DETR; see the module docstring."""

    name = "dab-detr"
    handles = HANDLES
    query_rule = SIGMOID_TOP_100
    has_relevance = True

    def default_processor(self, transformers: Any) -> Any:
        return transformers.ConditionalDetrImageProcessor()

    def level_modules(self, model: Any) -> list[nn.Module]:
        return [model.model.input_projection]

    def final_logits(self, model: Any, decoder_output: Any) -> torch.Tensor:
        logits: torch.Tensor = model.class_embed(decoder_output.intermediate_hidden_states[-1])
        return logits


FAMILY = DabDetrFamily()
