"""RT-DETRv2 (transformers' ``RTDetrV2ForObjectDetection``, ``model_type`` ``rt_detr_v2``): RT-DETR's shape.

Everything the plugin reads is RT-DETR's (:mod:`.rtdetr`): the target layer is
``model.model.decoder_input_proj`` (1×1 convolution + batch norm per level, strides 8 / 16 / 32),
a detection is a ``(query, class)`` pair of the sigmoid top-``Q`` rule, and per-box gradients re-run
the decoder alone from the captured levels (:class:`~.shapes.DecoderFamily`); the logits are the
last decoder layer's. v2 changes only the decoder's deformable attention (per-level sampling points,
``decoder_method="discrete"`` rounding the sampling locations): the locations are constants of the
graph either way, so the gradient with respect to the maps is exact.

**Processor.** ``rt_detr_v2`` is not in transformers' auto image-processor map; the checkpoints ship
an ``RTDetrImageProcessor`` (640×640 stretch, rescale only), which is also the default built here
offline for a folder without ``preprocessor_config.json``.

**No attention relevance** (deformable attention, as RT-DETR): the error names the alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..handles import Handles
from .family import SIGMOID_TOP_K
from .shapes import DecoderFamily

HANDLES = Handles(
    name="rt-detr-v2",
    classes=("RTDetrV2ForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("rt_detr_v2",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class RtDetrV2Family(DecoderFamily):
    """transformers' RT-DETRv2; see the module docstring."""

    name = "rt-detr-v2"
    handles = HANDLES
    query_rule = SIGMOID_TOP_K
    decoder_layer = -1

    def default_processor(self, transformers: Any) -> Any:
        return transformers.RTDetrImageProcessor()


FAMILY = RtDetrV2Family()
