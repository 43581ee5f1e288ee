"""D-RISE: time per 1000 masks, and per masked image relative to one plain forward.

The masked forwards run once per image for every detection of it (each box's map re-weights the
same masks), so the figure that matters is the time per 1000 masks; the map of each further box
costs only the weighted sum of the masks, printed too.

    python benchmarks/bench_drise.py                              # shapes detector, 300 masks
    python benchmarks/bench_drise.py --model fasterrcnn_mobilenet_v3_large_320_fpn --masks 200

Times are noisy on a shared machine; the ratio to one forward in the same run is the stable figure.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods.drise import DriseConfig, drise_cam
from pytest_camaudit.zoo.world import make_layout, render


def build(name: str) -> Detector:
    if name in ("shapes", "shapes-shortcut"):
        from pytest_camaudit.zoo.model import load_zoo_detector

        model, classes, meta = load_zoo_detector(name)
        return Detector.wrap(model, classes, name=name, device="cpu", meta=meta)
    import torchvision.models.detection as tvd

    torch.manual_seed(0)  # random weights score low: keep every box so there is one to explain
    keep_all = {"box_score_thresh": 0.0} if "rcnn" in name else {"score_thresh": 0.0}
    model = getattr(tvd, name)(weights=None, weights_backbone=None, **keep_all)
    return Detector.wrap(model, name=name, device="cpu")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="shapes")
    p.add_argument("--masks", type=int, default=300, help="masks actually run (the figure is scaled to 1000)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    detector = build(args.model)
    pixels = render(make_layout(20_000_003))
    engine = CamEngine(detector, "drise")
    x = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)
    with torch.no_grad():
        detector.model([x])
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            detector.model([x])
            times.append(time.perf_counter() - t0)
    t_fwd = statistics.median(times)
    print(f"{args.model}, image {pixels.shape[1]}x{pixels.shape[0]}, {args.threads} thread(s); one forward {t_fwd * 1000:.1f} ms")
    for batch in args.batch:
        engine.clear()
        a = engine.analyze(load_image(pixels))
        dets = list(a.detections[:4])
        config = DriseConfig(masks=args.masks, batch_size=batch, seed=0, progress=False)
        t0 = time.perf_counter()
        drise_cam(a, dets[0], config)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for d in dets[1:]:
            drise_cam(a, d, config)
        t_more = (time.perf_counter() - t0) / max(1, len(dets) - 1)
        per_1000 = t_first / args.masks * 1000
        print(f"batch {batch:>3}: {per_1000:7.1f} s per 1000 masks = {t_first / args.masks / t_fwd:.2f} forwards per mask; "
              f"each further box of the image {t_more * 1000:.0f} ms")


if __name__ == "__main__":
    main()
