"""PP-DocLayoutV4 (transformers' ``PPDocLayoutV4ForObjectDetection``, ``model_type`` ``pp_doclayout_v4``).

RT-DETR's shape (:class:`~.shapes.DecoderFamily`): the target layer is ``model.model.decoder_input_proj``
(strides 8 / 16 / 32), a replay re-runs the decoder alone; its logits are the decoder's ``logits``
(only the last layer is scored). The boxes are 10-number quadrilaterals, refined inside the decoder
(not detached: part of the replay). The processor (``PPDocLayoutV4ImageProcessor``, an 800×800
stretch, the default built offline; its post-processing needs scipy) keeps the sigmoid top-``Q`` rows
with ``score >= threshold`` re-sorted by reading order: detections are traced by the **tag rule**
(:func:`~.family.tagged_queries`, quads tagged with zero offsets). No attention relevance (deformable
attention); the error names the alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..handles import Handles
from .family import SIGMOID_TOP_K
from .shapes import DecoderFamily

HANDLES = Handles(
    name="pp-doclayout-v4",
    classes=("PPDocLayoutV4ForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("pp_doclayout_v4",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class PPDocLayoutV4Family(DecoderFamily):
    """transformers' PP-DocLayoutV4; see the module docstring."""

    name = "pp-doclayout-v4"
    handles = HANDLES
    query_rule = SIGMOID_TOP_K  # the scores it keeps (their order is the processor's reading order: traced by tags)
    traced_by_tags = True

    def default_processor(self, transformers: Any) -> Any:
        return transformers.PPDocLayoutV4ImageProcessor()

    def final_logits(self, model: Any, decoder_output: Any) -> torch.Tensor:
        logits: torch.Tensor = decoder_output.logits
        return logits


FAMILY = PPDocLayoutV4Family()
