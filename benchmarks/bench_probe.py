"""How far the EigenCAM peak lands from a bright spot, in feature cells, for YOLO, DETR and RT-DETR.

The alignment tests (``tests/detectors/test_ultralytics.py`` and ``test_huggingface.py``,
``test_bright_spot_lands_within_one_feature_cell``) assert a distance of at most one cell. This
prints the distances themselves, with the same probe models, images and cell sizes: a 9×9 white
spot at odd positions of odd, non-square black images, seen by a model whose levels are pooled
brightness. YOLO's cell is that of the map's grid; DETR's and RT-DETR's that of the coarsest level
(see the Hugging Face test's docstring). Needs the ``yolo`` and ``hf`` extras.

    python benchmarks/bench_probe.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from pytest_camaudit.engine.analysis import ImageAnalysis
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods import cam_for


def spot_image(h: int, w: int, cy: int, cx: int) -> np.ndarray:
    """``uint8 [h, w, 3]`` black with a 9×9 white spot centred at ``(cy, cx)``."""
    image = np.zeros((h, w, 3), np.uint8)
    image[cy - 4 : cy + 5, cx - 4 : cx + 5] = 255
    return image


def distance_in_cells(analysis: ImageAnalysis, cy: int, cx: int, coarsest: bool) -> float:
    """The larger of the peak's vertical and horizontal distance from the spot, in cells on the image."""
    g = analysis.geometry
    grid = min((v.shape[-2:] for v in analysis.levels.values()), key=lambda s: s[0] * s[1]) if coarsest else analysis.grid
    cell_y = g.padded[0] / grid[0] * g.original[0] / g.resized[0]
    cell_x = g.padded[1] / grid[1] * g.original[1] / g.resized[1]
    values = cam_for(analysis).values
    py, px = np.unravel_index(np.argmax(values), values.shape)
    return max(abs(int(py) - cy) / cell_y, abs(int(px) - cx) / cell_x)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' probe models
    import detectors.test_huggingface as hf_tests
    import detectors.test_ultralytics as yolo_tests

    rows: list[tuple[str, list[float]]] = []
    yolo = []
    for h, w, (cy, cx) in yolo_tests.SPOTS:
        model = yolo_tests.DetectionModel(yolo_tests.PROBE, verbose=False).eval()
        analysis = CamEngine(yolo_tests.yolo_detector(model, imgsz=yolo_tests.IMGSZ)).analyze(load_image(spot_image(h, w, cy, cx)))
        yolo.append(distance_in_cells(analysis, cy, cx, coarsest=False))
    rows.append(("ultralytics YOLO", yolo))
    for family in hf_tests.FAMILIES:
        found = []
        for h, w, (cy, cx) in hf_tests.SPOTS:
            detector = hf_tests.hf_detector(hf_tests.hf.probe(family), hf_tests.hf.processor(family), threshold=1.0)
            found.append(distance_in_cells(CamEngine(detector, "eigencam").analyze(load_image(spot_image(h, w, cy, cx))), cy, cx, True))
        rows.append((family, found))
    print(f"{'family':<20}{'worst':>8}  per image (cells; the tests allow 1)")
    for name, distances in rows:
        print(f"{name:<20}{max(distances):>8.2f}  " + " ".join(f"{d:.2f}" for d in distances))


if __name__ == "__main__":
    main()
