"""RetinaNet (torchvision v1 and v2): sigmoid of the classification branch at one anchor.

v2's head uses GroupNorm, so a cell's score reads its whole level (see :mod:`.onestage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..handles import Handles
from .onestage import OneStageFamily, to_cells

HANDLES = Handles(
    name="retinanet",
    classes=('RetinaNet',),
    names=('retinanet_resnet50_fpn', 'retinanet_resnet50_fpn_v2'),
    loader="pytest_camaudit.detectors.torchvision.common:load",
    describe="a torchvision builder (e.g. fasterrcnn_resnet50_fpn)",
)


@dataclass(frozen=True, eq=False)
class RetinaNetFamily(OneStageFamily):
    name = "retinanet"
    handles = HANDLES

    def scores(self, model: Any, level: int, x: torch.Tensor) -> torch.Tensor:
        ch = model.head.classification_head
        return torch.sigmoid(to_cells(ch.cls_logits(ch.conv(x)), ch.num_classes))

    def head_modules(self, model: Any) -> list[nn.Module]:
        return [model.head.classification_head]

    def anchor_scores(self, head: dict[str, torch.Tensor], label: int) -> torch.Tensor:
        return torch.sigmoid(head["cls_logits"][0][:, label])


FAMILY = RetinaNetFamily()
