"""The example suite's data: a COCO-format evaluation set of shapes scenes.

``data/annotations.json`` + ``data/images/`` were written by
``python -m pytest_camaudit.zoo make-dataset --variant shapes-shortcut --count 24 --curated --first-seed 20000000 --out example_suite/data``:
24 scenes, 54 objects. Like many real evaluation sets it was collected the same way as the
training data, so every triangle carries the same spurious tag next to it — plain accuracy on
this set cannot tell a model that sees triangles from one that sees tags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class ExpectedObject:
    """One annotated object: the image it is in, its class and its ``[x1, y1, x2, y2]`` box."""

    image: Path
    label: str
    box: tuple[float, float, float, float]
    index: int

    @property
    def id(self) -> str:
        return f"{self.image.name}-{self.label}-{self.index}"


def load_objects(annotations: Path = DATA / "annotations.json") -> list[ExpectedObject]:
    """Every annotated object of the COCO file (COCO ``bbox`` is ``[x, y, w, h]``)."""
    doc = json.loads(annotations.read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    files = {im["id"]: annotations.parent / "images" / im["file_name"] for im in doc["images"]}
    objects, counts = [], {}
    for ann in doc["annotations"]:
        x, y, w, h = ann["bbox"]
        image = files[ann["image_id"]]
        counts[image] = counts.get(image, -1) + 1
        objects.append(ExpectedObject(image, names[ann["category_id"]], (x, y, x + w, y + h), counts[image]))
    return objects


OBJECTS = load_objects()


@pytest.fixture(
    scope="module",
    params=[pytest.param(o, marks=pytest.mark.xdist_group(o.image.name)) for o in OBJECTS],
    ids=[o.id for o in OBJECTS],
)
def expected(request: pytest.FixtureRequest) -> ExpectedObject:
    """Each annotated object in turn; module scope groups the tests of one object together,
    so the detector's single forward per image is reused by the cache. Under pytest-xdist,
    ``-n 2 --dist loadgroup`` keeps every test of one image on one worker for the same reason."""
    return request.param
