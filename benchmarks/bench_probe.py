"""How far the EigenCAM peak lands from a bright spot, in feature cells, for YOLO and the transformers families.

The alignment tests (``tests/detectors/test_ultralytics.py`` and ``test_huggingface.py``,
``test_bright_spot_lands_within_one_feature_cell``) assert a distance of at most one cell. This
prints the distances themselves, with the same probe models, images and cell sizes: a 9×9 white
spot at odd positions of odd, non-square black images, seen by a model whose levels are pooled
brightness. YOLO's cell is that of the map's grid; the transformers families' (every probe of
``tests/support/contract.py`` with a spot twin) that of the coarsest level (see the contract suite). Needs the ``yolo`` and ``hf`` extras.

    python benchmarks/bench_probe.py                    # every row
    python benchmarks/bench_probe.py rf-detr lw-detr    # some rows (family names; ``yolo``)
"""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_camaudit.engine.analysis import ImageAnalysis
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods import cam_for


def distance_in_cells(analysis: ImageAnalysis, cy: int, cx: int, grid: tuple[int, int]) -> float:
    """The larger of the EigenCAM peak's vertical and horizontal distance from the spot, in cells of ``grid``."""
    from support.probes import cell_on_image, peak

    cell_y, cell_x = cell_on_image(analysis.geometry, grid)
    py, px = peak(cam_for(analysis).values)
    return max(abs(py - cy) / cell_y, abs(px - cx) / cell_x)


def coarsest(analysis: ImageAnalysis) -> tuple[int, int]:
    """The smallest level grid of ``analysis``."""
    h, w = min((tuple(v.shape[-2:]) for v in analysis.levels.values()), key=lambda s: s[0] * s[1])
    return int(h), int(w)


def main(families: list[str]) -> None:
    """Print the distances; ``families``: the rows to run (family names, ``yolo``), all when empty."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' probe models and spots
    from support.probes import SPOTS, spot_image

    rows: list[tuple[str, list[float]]] = []
    if not families or "yolo" in families:
        from support.yolo import PROBE_SPOTS, probe_detector

        yolo = []
        for h, w, (cy, cx) in PROBE_SPOTS:
            analysis = CamEngine(probe_detector()).analyze(load_image(spot_image(h, w, cy, cx)))
            yolo.append(distance_in_cells(analysis, cy, cx, analysis.grid))
        rows.append(("ultralytics YOLO", yolo))
    from support.contract import PROBES

    for probe in [p for p in PROBES if p.spot is not None and p.requires == "transformers"]:  # every spot twin
        if families and probe.family not in families:
            continue
        found = []
        detector = probe.spot()  # the contract suite's twin, with its processor
        for h, w, (cy, cx) in SPOTS:
            analysis = CamEngine(detector, "eigencam").analyze(load_image(spot_image(h, w, cy, cx)))
            found.append(distance_in_cells(analysis, cy, cx, coarsest(analysis)))
        rows.append((probe.family, found))
    print(f"{'family':<20}{'worst':>8}  per image (cells; the tests allow 1)")
    for name, distances in rows:
        print(f"{name:<20}{max(distances):>8.2f}  " + " ".join(f"{d:.2f}" for d in distances))


if __name__ == "__main__":
    main(sys.argv[1:])
