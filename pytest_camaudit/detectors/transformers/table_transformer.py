"""Table Transformer (transformers' ``TableTransformerForObjectDetection``, ``model_type`` ``table-transformer``).

DETR's architecture under another name (:class:`~.shapes.EncoderDecoderFamily`): the target layer is
``model.model.input_projection`` (1×1 convolution of the stride-32 map), a replay re-runs the encoder,
the decoder and ``class_labels_classifier``; the processor is DETR's (``DetrImageProcessor``: softmax,
the "no object" column dropped, query order, :data:`~.family.SOFTMAX_WITHOUT_NO_OBJECT`), which
transformers maps ``table-transformer`` to and which is the default built here offline.

**Attention relevance applies** (Chefer et al. 2021), DETR's rules unchanged. Hub checkpoints use
timm ResNet-18 / 34 backbones (see :mod:`.folders`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..handles import Handles
from .family import SOFTMAX_WITHOUT_NO_OBJECT
from .shapes import EncoderDecoderFamily

HANDLES = Handles(
    name="table-transformer",
    classes=("TableTransformerForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("table-transformer",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class TableTransformerFamily(EncoderDecoderFamily):
    """transformers' Table Transformer; see the module docstring."""

    name = "table-transformer"
    handles = HANDLES
    query_rule = SOFTMAX_WITHOUT_NO_OBJECT
    has_relevance = True

    def default_processor(self, transformers: Any) -> Any:
        return transformers.DetrImageProcessor()

    def level_modules(self, model: Any) -> list[nn.Module]:
        return [model.model.input_projection]


FAMILY = TableTransformerFamily()
