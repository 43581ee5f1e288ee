"""torchvision's detectors: one module per family, and what they share.

* :mod:`.common` — the torchvision protocol's class names and counts (:class:`~.common.TorchvisionFamily`)
  and the detection builders as a model source (``--camaudit-model=fasterrcnn_resnet50_fpn``);
* :mod:`.rcnn` (Faster / Mask / Keypoint R-CNN and the embedded ``shapes`` models),
  :mod:`.retinanet`, :mod:`.fcos`, :mod:`.ssd` (sharing :mod:`.onestage`): each declares its
  models and builder names (``HANDLES``) and defines its family (``FAMILY``).

May import :mod:`pytest_camaudit.detectors`' shared contract (``base``, ``family``, ``handles``,
``receptive``, ``statedict``) and the bottom modules. Importing this package is light: the names
the old module ``pytest_camaudit.detectors.torchvision`` had (``build_torchvision``,
``torchvision_class_names``…) load :mod:`.common` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..moved import forward

if TYPE_CHECKING:
    from .common import (
        TorchvisionFamily,
        build_torchvision,
        coco_class_names,
        load,
        num_classes,
        torchvision_class_names,
        torchvision_weights_path,
    )

__all__ = ["TorchvisionFamily", "build_torchvision", "coco_class_names", "load", "num_classes", "torchvision_class_names",
           "torchvision_weights_path"]

__getattr__ = forward(__name__, f"{__name__}.common")
