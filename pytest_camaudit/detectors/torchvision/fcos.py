"""FCOS (torchvision): ``sqrt(sigmoid(cls) · sigmoid(centerness))`` at one cell.

The classification and regression branches both count (centerness comes from the latter); both use
GroupNorm, so a cell's score reads its whole level (see :mod:`.onestage`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..handles import Handles
from .onestage import OneStageFamily, to_cells

HANDLES = Handles(
    name="fcos",
    classes=('FCOS',),
    names=('fcos_resnet50_fpn',),
    loader="pytest_camaudit.detectors.torchvision.common:load",
    describe="a torchvision builder (e.g. fasterrcnn_resnet50_fpn)",
)


@dataclass(frozen=True, eq=False)
class FcosFamily(OneStageFamily):
    name = "fcos"
    handles = HANDLES

    def scores(self, model: Any, level: int, x: torch.Tensor) -> torch.Tensor:
        ch, rg = model.head.classification_head, model.head.regression_head
        cls = to_cells(ch.cls_logits(ch.conv(x)), ch.num_classes)
        ctr = to_cells(rg.bbox_ctrness(rg.conv(x)), 1)
        return torch.sqrt(torch.sigmoid(cls) * torch.sigmoid(ctr))

    def head_modules(self, model: Any) -> list[nn.Module]:
        return [model.head.classification_head, model.head.regression_head]

    def anchor_scores(self, head: dict[str, torch.Tensor], label: int) -> torch.Tensor:
        return torch.sqrt(torch.sigmoid(head["cls_logits"][0][:, label]) * torch.sigmoid(head["bbox_ctrness"][0][:, 0]))

    def decode(self, model: Any, regression: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        decoded: torch.Tensor = model.box_coder.decode(regression, anchors)
        return decoded

    def anchors_per_cell(self, model: Any, levels: int) -> list[int]:
        return [1] * levels


FAMILY = FcosFamily()
