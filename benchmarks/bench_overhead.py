"""Audit overhead: time to detect *and* explain an image, relative to detecting it alone.

Three ways, on the same inputs, median of N:

* ``bare``: ``model([image])`` under ``torch.no_grad()`` — what a plain accuracy test pays.
* ``seed``: the classic grad-cam workflow — run the detector for the boxes, then
  ``EigenCAM(model, [model.backbone], reshape_transform=fasterrcnn_reshape_transform)`` with
  ``FasterRCNNBoxScoreTarget``, which runs the detector a second time.
* ``camaudit``: ``CamEngine.analyze`` + ``cam_for(analysis, "eigencam")`` — one hooked forward
  (a fresh engine each time, so nothing is served from its cache).

Each ratio is timed in its own interleaved pair with ``bare`` (bare, camaudit, bare, camaudit…;
then bare, seed…). Interleaving all three hides overhead: grad-cam's forward runs with autograd,
and after it every forward of the process is slower (on ``shapes``, bare 20 → 34 ms), which
dilutes any ratio measured next to it (camaudit/bare read 1.19 that way and 1.31 in a clean pair,
before the speed-ups that this benchmark now reports).

Targets (issue 3): camaudit / bare ≤ 1.10 on ``fasterrcnn_resnet50_fpn`` (random weights,
480×640 input) and on the embedded ``shapes`` detector.

    python benchmarks/bench_overhead.py            # both models (201 pairs on shapes, 7 on R50)
    python benchmarks/bench_overhead.py --quick    # shapes only
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch


def _timeit(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


Workflow = Callable[[], object]


def workflows(name: str, model: torch.nn.Module, classes: list[str], image: np.ndarray) -> dict[str, Workflow]:
    """The three ways of getting detections (and a CAM) for ``image``, as zero-argument calls."""
    from pytorch_grad_cam import EigenCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
    from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform

    from pytest_camaudit.detectors.base import Detector
    from pytest_camaudit.engine.engine import CamEngine
    from pytest_camaudit.engine.images import load_image
    from pytest_camaudit.methods import cam_for

    model.eval()
    tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    loaded = load_image(image)
    detector = Detector.wrap(model, classes, name=name, device="cpu")

    def bare() -> None:
        with torch.no_grad():
            model([tensor])

    def seed() -> None:
        with torch.no_grad():
            out = model([tensor])[0]
        keep = out["scores"] > 0.5
        targets = [FasterRCNNBoxScoreTarget(labels=out["labels"][keep], bounding_boxes=out["boxes"][keep])]
        with EigenCAM(model, [model.backbone], reshape_transform=fasterrcnn_reshape_transform) as cam:
            cam(tensor[None], targets=targets)

    def ours() -> None:
        engine = CamEngine(detector, "eigencam")
        cam_for(engine.analyze(loaded), "eigencam")

    return {"bare": bare, "seed": seed, "camaudit": ours}


def paired(bare: Workflow, other: Workflow, reps: int) -> tuple[float, float, list[float]]:
    """``bare`` and ``other`` timed alternately ``reps`` times after one warm-up each: their median
    seconds and the three quartiles of the per-pair ratio ``other / bare`` (robust to the drift of
    a shared machine, which moves both calls of a pair alike)."""
    bare()
    other()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(reps):
        times[0].append(_timeit(bare))
        times[1].append(_timeit(other))
    ratios = [o / b for b, o in zip(*times, strict=True)]
    return statistics.median(times[0]), statistics.median(times[1]), statistics.quantiles(ratios, n=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=None, help="pairs per ratio (default: 201 on shapes, 7 on R50)")
    parser.add_argument("--quick", action="store_true", help="shapes model only")
    args = parser.parse_args()
    torch.manual_seed(0)

    from pytest_camaudit.zoo.model import load_zoo_detector
    from pytest_camaudit.zoo.world import make_scene

    model, classes, _ = load_zoo_detector("shapes")
    cases = [("shapes (160x160 scene)", workflows("shapes", model, classes, make_scene(20_000_003).image), args.reps or 201)]
    if not args.quick:
        from torchvision.models.detection import fasterrcnn_resnet50_fpn

        from pytest_camaudit.detectors.torchvision import coco_class_names

        r50 = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        cases.append(("fasterrcnn_resnet50_fpn, random weights (480x640)", workflows("r50", r50, coco_class_names(), image), args.reps or 7))

    # every camaudit pair before any seed pair: grad-cam slows every later forward of the process
    ours = {name: paired(w["bare"], w["camaudit"], reps) for name, w, reps in cases}
    seed = {name: paired(w["bare"], w["seed"], reps) for name, w, reps in cases}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians of interleaved pairs, "
          "ratio = median of per-pair ratios [quartiles]")
    print(f"{'model':<52}{'pairs':>6}{'bare s':>9}{'ours s':>9}{'ours/bare':>22}{'bare s':>9}{'seed s':>9}{'seed/bare':>11}")
    for name, _, reps in cases:
        (b1, t1, q1), (b2, t2, q2) = ours[name], seed[name]
        spread = f"{q1[1]:.3f} [{q1[0]:.3f}-{q1[2]:.3f}]"
        print(f"{name:<52}{reps:>6}{b1:>9.4f}{t1:>9.4f}{spread:>22}{b2:>9.4f}{t2:>9.4f}{q2[1]:>11.2f}")


if __name__ == "__main__":
    main()
