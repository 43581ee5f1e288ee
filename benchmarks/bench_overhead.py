"""Audit overhead: time to detect *and* explain an image, relative to detecting it alone.

Three ways, measured side by side in one run on the same inputs, interleaved, median of N:

* ``bare``: ``model([image])`` under ``torch.no_grad()`` — what a plain accuracy test pays.
* ``seed``: the classic grad-cam workflow — run the detector for the boxes, then
  ``EigenCAM(model, [model.backbone], reshape_transform=fasterrcnn_reshape_transform)`` with
  ``FasterRCNNBoxScoreTarget``, which runs the detector a second time.
* ``camaudit``: ``CamEngine.analyze`` + ``analysis.cam("eigencam")`` — one hooked forward
  (a fresh engine each time, so nothing is served from its cache).

Targets (issue 3): camaudit / bare ≤ 1.10 on ``fasterrcnn_resnet50_fpn`` (random weights,
480×640 input) and on the embedded ``shapes`` detector.

    python benchmarks/bench_overhead.py            # both models, 7 repetitions
    python benchmarks/bench_overhead.py --quick    # shapes only, 5 repetitions
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


def measure(name: str, model: torch.nn.Module, classes: list[str], image: np.ndarray, reps: int) -> dict[str, float]:
    from pytorch_grad_cam import EigenCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
    from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform

    from pytest_camaudit.detector import Detector
    from pytest_camaudit.engine import CamEngine
    from pytest_camaudit.images import load_image

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
        engine.analyze(loaded).cam("eigencam")

    runs: dict[str, list[float]] = {"bare": [], "seed": [], "camaudit": []}
    for fn in (bare, seed, ours):  # warm-up
        fn()
    for _ in range(reps):
        runs["bare"].append(_timeit(bare))
        runs["seed"].append(_timeit(seed))
        runs["camaudit"].append(_timeit(ours))
    return {k: statistics.median(v) for k, v in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="shapes model only, 5 repetitions")
    args = parser.parse_args()
    reps = 5 if args.quick else args.reps
    torch.manual_seed(0)

    from pytest_camaudit.zoo.model import load_zoo_detector
    from pytest_camaudit.zoo.world import make_scene

    cases = []
    model, classes, _ = load_zoo_detector("shapes")
    cases.append(("shapes (160x160 scene)", model, classes, make_scene(20_000_003).image))
    if not args.quick:
        from torchvision.models.detection import fasterrcnn_resnet50_fpn

        from pytest_camaudit.detector import coco_categories

        r50 = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
        rng = np.random.default_rng(0)
        cases.append(("fasterrcnn_resnet50_fpn, random weights (480x640)", r50, coco_categories(), rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)))

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {reps}")
    print(f"{'model':<52}{'bare s':>9}{'seed s':>9}{'ours s':>9}{'seed/bare':>11}{'ours/bare':>11}")
    for name, model, classes, image in cases:
        t = measure(name, model, classes, image, reps)
        print(
            f"{name:<52}{t['bare']:>9.3f}{t['seed']:>9.3f}{t['camaudit']:>9.3f}"
            f"{t['seed'] / t['bare']:>11.2f}{t['camaudit'] / t['bare']:>11.2f}"
        )


if __name__ == "__main__":
    main()
