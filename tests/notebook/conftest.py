"""A zoo scene with a tagged triangle, explored once per module; the notebook layer's detector cache emptied after each module."""

from __future__ import annotations

import cv2
import pytest

SEED = 20_000_009
"""A ``shapes-shortcut`` scene (also ``example_suite/data/images/scene-20000009.png``): a triangle with its tag, and a circle."""


@pytest.fixture(scope="module")
def tagged_scene(tmp_path_factory):
    """``(path, triangle box)`` of the scene written as PNG; the triangle carries the shortcut world's tag."""
    from pytest_camaudit.zoo.world import CLASSES, make_scene

    scene = make_scene(SEED, "shapes-shortcut")
    triangle = [i for i, label in enumerate(scene.labels) if CLASSES[label] == "triangle"]
    assert triangle and set(triangle) <= set(scene.cues), "the scene must hold a tagged triangle"
    path = tmp_path_factory.mktemp("tagged") / "tagged-triangle.png"
    cv2.imwrite(str(path), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
    return path, [round(float(v), 1) for v in scene.boxes[triangle[0]]]


@pytest.fixture(scope="module", autouse=True)
def _release_notebook_detectors():
    yield
    from pytest_camaudit.notebook.api import release_detectors

    release_detectors()
