"""DEIMv2 (transformers' ``Deimv2ForObjectDetection``, ``model_type`` ``deimv2``): D-FINE's decoder.

The target layer is ``model.model.decoder_input_proj``: one module per level (strides 8 / 16 / 32;
the "lite" encoder: 8 / 16), an ``nn.Identity`` where ``d_model`` equals the encoder's width (the
default) — the maps are then the hybrid encoder's outputs themselves. A detection is a
``(query, class)`` pair of the sigmoid top-``Q`` rule. As in D-FINE, the eval-mode decoder scores
only layer ``eval_idx`` through its LQE head, the last entry of ``intermediate_logits``, which the
replay (:class:`~.shapes.DecoderFamily`, the decoder alone on leaves of the captured levels) reads;
the model detaches its query features, reference points and refined boxes, so gradients are exact.
Backbones: HGNetV2 or DINOv3 (a DINOv3 backbone installs transformers' output-recording hooks after
a first forward; they are transformers', not the plugin's).

**Processor.** transformers maps ``deimv2`` to ``RTDetrImageProcessor`` (640×640 stretch, rescale
only), which is also the default built here offline.

**No attention relevance** (deformable attention): the error names the alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..handles import Handles
from .family import SIGMOID_TOP_K
from .shapes import DecoderFamily

HANDLES = Handles(
    name="deimv2",
    classes=("Deimv2ForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("deimv2",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class Deimv2Family(DecoderFamily):
    """transformers' DEIMv2; see the module docstring."""

    name = "deimv2"
    handles = HANDLES
    query_rule = SIGMOID_TOP_K
    decoder_layer = -1  # the eval_idx layer's (LQE-scored) logits are the last entry

    def default_processor(self, transformers: Any) -> Any:
        return transformers.RTDetrImageProcessor()


FAMILY = Deimv2Family()
