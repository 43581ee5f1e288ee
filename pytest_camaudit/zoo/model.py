"""The embedded detectors: a tiny residual CNN under torchvision's FPN inside a real ``FasterRCNN``.

``model.backbone(x)`` returns the same ``OrderedDict`` of levels as
``fasterrcnn_resnet50_fpn`` — ``'0'`` (stride 4), ``'1'`` (8), ``'2'`` (16), ``'3'`` (32) and
``'pool'`` (64), each with 64 channels — so the plugin treats it exactly like the real model.

Checkpoints are plain dictionaries loaded with ``torch.load(..., weights_only=True)``::

    {"format": "pytest-camaudit-zoo/1", "name": str, "classes": [str, ...],
     "config": {...}, "meta": {...}, "state_dict": {str: Tensor}}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from .catalog import MODELS, ZOO_MODELS, weights_file
from .world import CLASSES, DEFAULT_SIZE

CHECKPOINT_FORMAT = "pytest-camaudit-zoo/1"

DEFAULT_CONFIG: dict[str, Any] = {
    "size": DEFAULT_SIZE,
    "stem": [24, 32],
    "widths": [32, 64, 96, 128],
    "blocks": [1, 2, 2, 1],
    "fpn_channels": 64,
    "anchor_sizes": [20, 32, 52, 80, 104],
    "representation_size": 256,
}


class ZooCheckpointError(RuntimeError):
    """A shipped or user checkpoint is missing, corrupt or of the wrong kind."""


class _Block(nn.Module):
    """Pre-activation-free basic residual block (conv-BN-ReLU-conv-BN + shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.short(x))


class TinyResNet(nn.Module):
    """Stem to stride 4, then four stages at strides 4, 8, 16, 32 (``layer1`` … ``layer4``).

    Input ``FloatTensor[B, 3, H, W]``; ``layerK`` outputs ``[B, widths[K-1], H / s, W / s]``.
    """

    def __init__(self, stem: list[int], widths: list[int], blocks: list[int]) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem[0], 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem[0]),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem[0], stem[1], 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem[1]),
            nn.ReLU(inplace=True),
        )
        cin = stem[1]
        for k, (width, n) in enumerate(zip(widths, blocks, strict=True), start=1):
            stride = 1 if k == 1 else 2
            layers = [_Block(cin, width, stride)] + [_Block(width, width, 1) for _ in range(n - 1)]
            self.add_module(f"layer{k}", nn.Sequential(*layers))
            cin = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - IntermediateLayerGetter
        x = self.stem(x)
        for k in range(1, 5):
            x = getattr(self, f"layer{k}")(x)
        return x


def build_shapes_detector(num_classes: int = len(CLASSES), config: Mapping[str, Any] | None = None) -> FasterRCNN:
    """Build an untrained shapes detector.

    Args:
        num_classes: number of classes including ``__background__``.
        config: overrides of :data:`DEFAULT_CONFIG`.

    Returns:
        A ``torchvision.models.detection.FasterRCNN`` with ``min_size = max_size = size``.
    """
    cfg = {**DEFAULT_CONFIG, **(config or {})}
    body = TinyResNet(cfg["stem"], cfg["widths"], cfg["blocks"])
    backbone = BackboneWithFPN(
        body,
        return_layers={f"layer{k}": str(k - 1) for k in range(1, 5)},
        in_channels_list=list(cfg["widths"]),
        out_channels=cfg["fpn_channels"],
    )
    anchors = AnchorGenerator(
        sizes=tuple((s,) for s in cfg["anchor_sizes"]),
        aspect_ratios=((0.5, 1.0, 2.0),) * len(cfg["anchor_sizes"]),
    )
    c = cfg["fpn_channels"]
    rep = cfg["representation_size"]
    return FasterRCNN(
        backbone,
        num_classes=None,
        min_size=cfg["size"],
        max_size=cfg["size"],
        rpn_anchor_generator=anchors,
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(c * 7 * 7, rep),
        box_predictor=FastRCNNPredictor(rep, num_classes),
        rpn_pre_nms_top_n_test=500,
        rpn_post_nms_top_n_test=300,
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=500,
        box_batch_size_per_image=128,
    )


def shipped_checkpoint(name: str) -> Path:
    """Path of the shipped checkpoint ``name`` (one of :data:`ZOO_MODELS`), existing or not."""
    if name not in ZOO_MODELS:
        raise ZooCheckpointError(f"unknown embedded detector {name!r}; expected one of {', '.join(ZOO_MODELS)}")
    return weights_file(name)


def regenerate_command(name: str) -> str:
    """The command that retrains shipped checkpoint ``name`` into its place in the package."""
    return f"python -m pytest_camaudit.zoo train --variant {name} --out {shipped_checkpoint(name)}"


def save_checkpoint(model: FasterRCNN, path: Path, name: str, config: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Write ``model`` as a zoo checkpoint (atomically: a temporary file, then rename)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "name": name,
        "classes": list(CLASSES),
        "config": {**DEFAULT_CONFIG, **dict(config)},
        "meta": dict(meta),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def read_checkpoint(path: Path, hint: str | None = None, *, fmt: str = CHECKPOINT_FORMAT,
                    keys: tuple[str, ...] = ("classes", "config", "state_dict"), kind: str = "detector checkpoint",
                    expected: str = "zoo checkpoint") -> dict[str, Any]:
    """Load and validate a zoo checkpoint file (plain tensors and values only: ``weights_only``).

    Args:
        path: the ``.pt`` file.
        hint: what to do when the file is missing or broken (default: retrain it).
        fmt: the ``format`` string the file must carry (the YOLO zoo has its own).
        keys: entries the payload must have.
        kind, expected: how messages name the file and what it should be.

    Raises:
        ZooCheckpointError: naming ``path`` and what to do, when the file is missing, not a
            torch file, or not a zoo checkpoint of ``fmt``.
    """
    path = Path(path)
    hint = hint or "retrain it with `python -m pytest_camaudit.zoo train --out <file>`"
    if not path.is_file():
        raise ZooCheckpointError(f"{kind} {path} does not exist; {hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise ZooCheckpointError(
            f"{kind} {path} is corrupt or not a PyTorch file ({type(exc).__name__}: {exc}); {hint}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise ZooCheckpointError(f"{kind} {path} is not a pytest-camaudit {expected} (expected format {fmt!r}); {hint}")
    missing = [k for k in keys if k not in payload]
    if missing:
        raise ZooCheckpointError(f"{kind} {path} lacks {', '.join(map(repr, missing))}; {hint}")
    return payload


def load_zoo_detector(name_or_path: str | Path) -> tuple[FasterRCNN, list[str], dict[str, Any]]:
    """Load a shipped detector by name (``"shapes"``) or a zoo checkpoint file, in eval mode on CPU.

    Returns:
        ``(model, class_names, meta)``; ``class_names[0] == "__background__"``.

    Raises:
        ZooCheckpointError: the file is missing or corrupt; the message names the file and the
            command that regenerates it.
    """
    if str(name_or_path) in ZOO_MODELS:
        if MODELS[str(name_or_path)].architecture != "fasterrcnn":
            raise ZooCheckpointError(
                f"{name_or_path} is a {MODELS[str(name_or_path)].architecture} detector, not a Faster R-CNN; load it with "
                f"pytest_camaudit.detectors.loading.load_detector({str(name_or_path)!r}) (or pytest_camaudit.zoo.yolo.load_yolo_checkpoint)"
            )
        path = shipped_checkpoint(str(name_or_path))
        hint = f"regenerate it with `{regenerate_command(str(name_or_path))}`"
    else:
        path = Path(name_or_path)
        hint = None
    payload = read_checkpoint(path, hint)
    classes = [str(c) for c in payload["classes"]]
    model = build_shapes_detector(len(classes), payload["config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ZooCheckpointError(
            f"detector checkpoint {path} does not fit the shapes architecture: {exc}; "
            f"{hint or 'retrain it with `python -m pytest_camaudit.zoo train`'}"
        ) from exc
    model.eval()
    meta = {"name": payload.get("name", path.stem), "path": str(path), **dict(payload.get("meta", {}))}
    return model, classes, meta
