"""The zoo's names, in one place: the worlds scenes are drawn from and the detectors shipped.

Import-light (no torch, no OpenCV): the plugin's option parser reads it to validate
``--camaudit-model`` before anything heavy loads, and :func:`checkpoint_architecture` tells which
zoo format a ``.pt`` file holds by reading its pickle's bytes (nothing is unpickled).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..fileio import pickle_of

WORLDS: tuple[str, ...] = ("shapes", "shapes-shortcut")
"""World variants: ``shapes`` (clean) and ``shapes-shortcut`` (every annotated triangle carries a tag)."""


@dataclass(frozen=True)
class ZooModel:
    """A detector shipped inside the package.

    Attributes:
        name: its ``--camaudit-model`` name, also its checkpoint's file stem.
        world: the world variant it was trained on (and is evaluated on by default).
        architecture: ``"fasterrcnn"`` (torchvision Faster R-CNN on a tiny FPN) or ``"yolo"`` (ultralytics).
        summary: one line for ``--help`` and the README.
    """

    name: str
    world: str
    architecture: str
    summary: str


MODELS: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel("shapes", "shapes", "fasterrcnn", "clean Faster R-CNN on the shapes world"),
        ZooModel("shapes-shortcut", "shapes-shortcut", "fasterrcnn", "its twin that learned the triangles' tag"),
        ZooModel("shapes-yolo", "shapes", "yolo", "clean YOLO11n (ultralytics, AGPL-3.0) on the shapes world"),
        ZooModel("shapes-yolo-shortcut", "shapes-shortcut", "yolo", "its YOLO twin that learned the triangles' tag"),
    )
}

ZOO_MODELS: tuple[str, ...] = tuple(MODELS)
"""Names of the detectors shipped inside the package."""

__all__ = ["CHECKPOINT_FORMATS", "MODELS", "WORLDS", "ZOO_MODELS", "ZooModel", "checkpoint_architecture", "names_of", "pickle_of", "weights_file"]

CHECKPOINT_FORMATS: dict[str, str] = {"fasterrcnn": "pytest-camaudit-zoo/1", "yolo": "pytest-camaudit-zoo/yolo/1"}
"""Architecture → the ``format`` string its zoo checkpoints carry."""


def names_of(architecture: str) -> tuple[str, ...]:
    """Names of the shipped detectors of ``architecture`` (``"fasterrcnn"`` or ``"yolo"``)."""
    return tuple(n for n, m in MODELS.items() if m.architecture == architecture)


def checkpoint_architecture(path: str | Path) -> str | None:
    """The zoo architecture (``"fasterrcnn"``, ``"yolo"``) whose format string a ``.pt`` file's pickle
    names, else ``None`` (not a zoo checkpoint, or not a readable ``torch.save`` file)."""
    data = pickle_of(path)
    return next((arch for arch, fmt in CHECKPOINT_FORMATS.items() if fmt.encode() in data), None)


def weights_file(name: str) -> Path:
    """Where the shipped checkpoint of zoo model ``name`` lives (existing or not)."""
    return Path(str(resources.files("pytest_camaudit.zoo") / "weights" / f"{name}.pt"))
