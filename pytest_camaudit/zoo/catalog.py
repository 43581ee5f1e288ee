"""The zoo's names, in one place: the worlds scenes are drawn from and the detectors shipped.

Import-light (no torch, no OpenCV): the plugin's option parser reads it to validate
``--camaudit-model`` before anything heavy loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

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
    )
}

ZOO_MODELS: tuple[str, ...] = tuple(MODELS)
"""Names of the detectors shipped inside the package."""


def weights_file(name: str) -> Path:
    """Where the shipped checkpoint of zoo model ``name`` lives (existing or not)."""
    return Path(str(resources.files("pytest_camaudit.zoo") / "weights" / f"{name}.pt"))
