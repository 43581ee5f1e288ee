"""The example suite's data: a COCO-format evaluation set of shapes scenes.

``data/annotations.json`` + ``data/images/`` were written by
``python -m pytest_camaudit.zoo make-dataset --variant shapes-shortcut --count 24 --curated --first-seed 20000000 --out example_suite/data``:
24 scenes, 54 objects. Like many real evaluation sets it was collected the same way as the
training data, so every triangle carries the same spurious tag next to it — plain accuracy on
this set cannot tell a model that sees triangles from one that sees tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_camaudit import load_entries

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class AnnotatedObject:
    """One annotated object of the suite: the image it is in, its class, its ``[x1, y1, x2, y2]`` box
    and its place in that image's annotations (the plugin's own ``cases.ExpectedObject`` carries no image)."""

    image: Path
    label: str
    box: tuple[float, float, float, float]
    index: int

    @property
    def id(self) -> str:
        return f"{self.image.name}-{self.label}-{self.index}"


def load_objects(annotations: Path = DATA / "annotations.json") -> list[AnnotatedObject]:
    """Every annotated object of the COCO file, read with the plugin's own loader (which also
    checks the file: missing images, unknown categories, boxes out of bounds)."""
    entries = load_entries(annotations)
    broken = [e.problem_text() for e in entries if e.problems]
    if broken:
        raise pytest.UsageError(f"{annotations}: " + "; ".join(broken))
    return [AnnotatedObject(Path(e.path), o.label, tuple(o.box), i) for e in entries for i, o in enumerate(e.objects)]


OBJECTS = load_objects()


@pytest.fixture(
    scope="module",
    params=[pytest.param(o, marks=pytest.mark.xdist_group(o.image.name)) for o in OBJECTS],
    ids=[o.id for o in OBJECTS],
)
def expected(request: pytest.FixtureRequest) -> AnnotatedObject:
    """Each annotated object in turn; module scope groups the tests of one object together,
    so the detector's single forward per image is reused by the cache. Under pytest-xdist,
    ``-n 2 --dist loadgroup`` keeps every test of one image on one worker for the same reason."""
    return request.param
