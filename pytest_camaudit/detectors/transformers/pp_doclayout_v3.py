"""PP-DocLayoutV3 (transformers' ``PPDocLayoutV3ForObjectDetection``, ``model_type`` ``pp_doclayout_v3``).

RT-DETR's shape (:class:`~.shapes.DecoderFamily`): the target layer is ``model.model.decoder_input_proj``
(strides 8 / 16 / 32), a replay re-runs the decoder alone (with the mask and reading-order modules it
is passed, recorded) and reads the last layer's logits. Document layouts: the processor
(``PPDocLayoutV3ImageProcessor``, an 800×800 stretch, the default built offline) keeps the sigmoid
top-``Q`` rows with ``score >= threshold`` and **re-sorts them by reading order**, and turns masks into
polygons: no rule on the logits alone reproduces that order exactly (random models tie scores), so
detections are traced by the **tag rule** (:func:`~.family.tagged_queries`: the processor re-run on
query-index boxes). No attention relevance (deformable attention); the error names the alternatives.
Configs need four backbone outputs (the first, stride 4, feeds the mask branch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..handles import Handles
from .family import SIGMOID_TOP_K
from .shapes import DecoderFamily

HANDLES = Handles(
    name="pp-doclayout-v3",
    classes=("PPDocLayoutV3ForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("pp_doclayout_v3",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class PPDocLayoutV3Family(DecoderFamily):
    """transformers' PP-DocLayoutV3; see the module docstring."""

    name = "pp-doclayout-v3"
    handles = HANDLES
    query_rule = SIGMOID_TOP_K  # the scores it keeps (their order is the processor's reading order: traced by tags)
    traced_by_tags = True

    def default_processor(self, transformers: Any) -> Any:
        return transformers.PPDocLayoutV3ImageProcessor()


FAMILY = PPDocLayoutV3Family()
