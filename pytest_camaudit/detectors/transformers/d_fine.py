"""D-FINE (transformers' ``DFineForObjectDetection``, ``model_type`` ``d_fine``): RT-DETR's shape, FDR boxes.

The target layer is ``model.model.decoder_input_proj`` (strides 8 / 16 / 32 at three levels; an
HGNetV2 backbone and hybrid encoder before it); a detection is a ``(query, class)`` pair of the
sigmoid top-``Q`` rule (``RTDetrImageProcessor``'s ``post_process_object_detection``).

**Which logits.** In eval mode D-FINE's decoder scores only layer ``eval_idx`` (through its LQE head,
which also reads the layer's box-distribution statistics): ``intermediate_logits[:, -1]`` *is* that
entry, whatever ``eval_idx`` says, so the replay (:class:`~.shapes.DecoderFamily`: the decoder alone
on leaves of the captured levels) reads the last entry. transformers 5.25 runs only ``eval_idx = -1``
(every published config); another value makes its own forward raise.

**Gradients are exact**: the model detaches the query features, the initial and each refined box
and ``output_detach``; the FDR distribution chain that feeds the LQE head is inside the replay.

**Processor.** ``d_fine`` is not in transformers' auto image-processor map; checkpoints ship an
``RTDetrImageProcessor`` (640×640 stretch, rescale only), the default built here offline.

**No attention relevance** (deformable attention): the error names the alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..handles import Handles
from .family import SIGMOID_TOP_K
from .shapes import DecoderFamily

HANDLES = Handles(
    name="d-fine",
    classes=("DFineForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("d_fine",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class DFineFamily(DecoderFamily):
    """transformers' D-FINE; see the module docstring."""

    name = "d-fine"
    handles = HANDLES
    query_rule = SIGMOID_TOP_K
    decoder_layer = -1  # the eval_idx layer's (LQE-scored) logits are the last entry

    def default_processor(self, transformers: Any) -> Any:
        return transformers.RTDetrImageProcessor()


FAMILY = DFineFamily()
