"""SSD and SSDlite (torchvision): softmax of one level's classification convolution at one anchor.

Each level has its own classification module (``module_list[i]``); ``model.backbone`` is the
multi-scale feature extractor whose outputs they read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..handles import Handles
from .onestage import OneStageFamily, to_cells

HANDLES = Handles(
    name="ssd",
    classes=('SSD',),
    names=('ssd300_vgg16', 'ssdlite320_mobilenet_v3_large'),
    loader="pytest_camaudit.detectors.torchvision.common:load",
    describe="a torchvision builder (e.g. fasterrcnn_resnet50_fpn)",
)


@dataclass(frozen=True, eq=False)
class SsdFamily(OneStageFamily):
    name = "ssd"
    handles = HANDLES

    def scores(self, model: Any, level: int, x: torch.Tensor) -> torch.Tensor:
        ch = model.head.classification_head
        return F.softmax(to_cells(ch.module_list[level](x), ch.num_columns), dim=-1)

    def head_modules(self, model: Any) -> list[nn.Module]:
        return list(model.head.classification_head.module_list)

    def anchor_scores(self, head: dict[str, torch.Tensor], label: int) -> torch.Tensor:
        return F.softmax(head["cls_logits"][0], dim=-1)[:, label]


FAMILY = SsdFamily()
