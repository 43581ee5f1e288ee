"""The grammar of ``--camaudit-model``: which values name a detector, checked without importing torch.

A value is one of (first match wins):

* ``zoo`` — an embedded detector: ``shapes``, ``shapes-shortcut`` (:mod:`pytest_camaudit.zoo.catalog`);
* ``torchvision`` — a torchvision detection builder, e.g. ``fasterrcnn_resnet50_fpn``;
* ``callable`` — ``package.module:callable`` returning a model, a ``(model, class_names)`` pair or a
  :class:`~pytest_camaudit.detectors.base.Detector`;
* ``config`` — an architecture file or name, e.g. ``yolo11n.yaml`` (a family builds it with
  random weights);
* ``checkpoint`` — a weights file (``.pt``, ``.pth``, ``.safetensors``): a zoo checkpoint or a
  framework's own (ultralytics);
* ``directory`` — an existing folder, e.g. a Hugging Face ``save_pretrained`` directory.

Which family loads a ``config``, ``checkpoint`` or ``directory`` is decided when it is loaded
(:mod:`pytest_camaudit.detectors.loading`), from the file's content.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..zoo.catalog import ZOO_MODELS

TORCHVISION_BUILDERS: tuple[str, ...] = (
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "retinanet_resnet50_fpn",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "ssd300_vgg16",
    "ssdlite320_mobilenet_v3_large",
    "maskrcnn_resnet50_fpn",
    "maskrcnn_resnet50_fpn_v2",
    "keypointrcnn_resnet50_fpn",
)
"""torchvision detection builders that ``--camaudit-model`` accepts by name."""

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
CONFIG_SUFFIXES = (".yaml", ".yml")
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

ACCEPTED = (
    f"an embedded detector ({', '.join(ZOO_MODELS)}), a torchvision builder (e.g. fasterrcnn_resnet50_fpn), "
    "'package.module:callable' returning a model, an architecture file such as yolo11n.yaml, "
    "a checkpoint file (.pt, .pth, .safetensors) or a Hugging Face save_pretrained directory"
)


def spec_kind(value: str) -> str:
    """The kind of model spec ``value`` is (see the module docstring).

    Raises:
        ValueError: ``value`` names no detector; the message lists what is accepted.
    """
    v = value.strip()
    if v in ZOO_MODELS:
        return "zoo"
    if v in TORCHVISION_BUILDERS:
        return "torchvision"
    if _CALLABLE.match(v):
        return "callable"
    if v.lower().endswith(CONFIG_SUFFIXES):
        return "config"
    if v.lower().endswith(CHECKPOINT_SUFFIXES):
        return "checkpoint"
    if v and Path(v).expanduser().is_dir():
        return "directory"
    if "/" in v or "\\" in v:
        raise ValueError(f"model path {value!r} is not an existing folder or a known file type; expected {ACCEPTED}")
    raise ValueError(f"unknown model {value!r}; expected {ACCEPTED}")
