"""PP-DocLayoutV2 (transformers' ``PPDocLayoutV2ForObjectDetection``, ``model_type`` ``pp_doclayout_v2``).

RT-DETR's shape (:class:`~.shapes.DecoderFamily`): the target layer is ``model.model.decoder_input_proj``
(strides 8 / 16 / 32), a replay re-runs the decoder alone and reads the last layer's logits (decoder
order). Two orders sit between a detection and its decoder query: the processor
(``PPDocLayoutV2ImageProcessor``, an 800×800 stretch, the default built offline) keeps the sigmoid
top-``Q`` rows with ``score >= threshold`` re-sorted by reading order — traced by the **tag rule**
(:func:`~.family.tagged_queries`) — and the model itself permutes its queries before its outputs (those
whose best class clears ``config.class_thresholds`` first: :meth:`PPDocLayoutV2Family.decoder_queries`
recomputes that permutation from the decoder's logits, as the model does). The reading-order branch
reads only the permuted boxes and labels: it is not on the class logit's path. No attention relevance
(deformable attention); the error names the alternatives. Configs must set ``class_thresholds`` and
``class_order`` (checkpoints do; ``PPDocLayoutV2Config()`` leaves them empty and its forward raises).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...errors import DetectorRuntimeError
from ..handles import Handles
from .family import SIGMOID_TOP_K
from .shapes import DecoderFamily

HANDLES = Handles(
    name="pp-doclayout-v2",
    classes=("PPDocLayoutV2ForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("pp_doclayout_v2",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


@dataclass(frozen=True, eq=False)
class PPDocLayoutV2Family(DecoderFamily):
    """transformers' PP-DocLayoutV2; see the module docstring."""

    name = "pp-doclayout-v2"
    handles = HANDLES
    query_rule = SIGMOID_TOP_K  # the scores it keeps (their order is the processor's reading order: traced by tags)
    traced_by_tags = True

    def default_processor(self, transformers: Any) -> Any:
        return transformers.PPDocLayoutV2ImageProcessor()

    def decoder_queries(self, model: Any, output: Any, rows: torch.Tensor) -> torch.Tensor:
        """The model's own query permutation (kept queries first, ``argsort`` of the kept mask), applied to ``rows``."""
        logits = output.intermediate_logits[:, -1]
        best, classes = logits.max(dim=-1)
        thresholds = torch.tensor(model.config.class_thresholds, dtype=torch.float32, device=logits.device)[classes]
        permutation = torch.argsort((best.sigmoid() >= thresholds).int(), dim=1, descending=True)[0]
        if not torch.equal(logits[0, permutation], output.logits[0]):
            raise DetectorRuntimeError("PP-DocLayoutV2's output rows are not its decoder queries in the order the plugin "
                                       "recomputes (kept queries first); was the model's query sorting changed?")
        return permutation.cpu()[rows]


FAMILY = PPDocLayoutV2Family()
