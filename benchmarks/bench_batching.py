"""Batched extra forwards: the context check and D-RISE, one image per detector call against batches.

The K context re-scores of one image (one copy per checked box, everything outside the box filled)
and D-RISE's masked copies all share the image's size, hence its resize and padding, so they go
through the detector in batches of ``--camaudit-batch-size`` (``CamEngine(batch_size=…)``). This
script times both paths side by side in one run, alternating them (``_common.paired``), on whichever
device it runs (``--device auto``: CUDA when present), and prints the speed-up and images per second.
The results of the two paths are compared too (scores within 1e-5, maps within 1e-4:
``tests/engine/test_batching.py`` holds that).

    python benchmarks/bench_batching.py                         # shapes + R50 480x640, batch 1 vs 8
    python benchmarks/bench_batching.py --batch 16 --device cuda
    python benchmarks/bench_batching.py --quick                 # shapes only, few rounds

On a CPU with few cores, batching buys little (the cores are already busy within one image); on a
GPU it is where the images per second come from.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import add_threads_arg, load, paired, set_threads

from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.methods.drise import DriseConfig, drise_cam


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def measure(model: str, boxes: int, masks: int, batch: int, reps: int, device: str) -> None:
    """Print the context-check and D-RISE timings of ``model`` on ``device``, batch 1 against ``batch``."""
    from pytest_camaudit.detectors.base import Detector

    bench = load(model, score_thresh=0.0 if model == "r50" else 0.01)
    src = bench.detector
    detector = Detector.wrap(bench.model.to(device), src.class_names, name=src.name, device=device, meta=src.meta)
    one, many = CamEngine(detector, batch_size=1), CamEngine(detector, batch_size=batch)
    image = bench.loaded()
    a1, ab = one.analyze(image), many.analyze(image)
    dets1, detsb = list(a1.detections[:boxes]), list(ab.detections[:boxes])
    k = len(dets1)
    ctx = paired(lambda: one.without_context(a1, dets1), lambda: many.without_context(ab, detsb), reps)
    pairs = zip(one.without_context(a1, dets1), many.without_context(ab, detsb), strict=True)
    worst = max((abs(x.score_without - y.score_without) for x, y in pairs), default=0.0)
    q1, _, q3 = ctx.quartiles
    print(f"{bench.describe()} on {device}, {k} boxes:")
    print(f"  context check, {k} re-scores: one at a time {ctx.a:.3f} s, batches of {batch} {ctx.b:.3f} s; "
          f"speed-up {1 / ctx.ratio:.2f}x [per-pair quartiles {1 / q3:.2f}-{1 / q1:.2f}]; "
          f"{k / ctx.b:.1f} vs {k / ctx.a:.1f} images/s; worst score difference {worst:.1e}")

    def drise(engine: CamEngine, size: int) -> np.ndarray:
        engine.clear()  # a new analysis: D-RISE runs its masked forwards again
        analysis = engine.analyze(image)
        return drise_cam(analysis, analysis.detections[0], DriseConfig(masks=masks, batch_size=size, seed=0, progress=False)).values

    dr = paired(lambda: drise(one, 1), lambda: drise(many, batch), max(2, reps // 2))
    diff = float(np.abs(drise(one, 1) - drise(many, batch)).max())
    print(f"  D-RISE, {masks} masks: one at a time {dr.a:.3f} s, batches of {batch} {dr.b:.3f} s; "
          f"speed-up {1 / dr.ratio:.2f}x; {masks / dr.b:.0f} vs {masks / dr.a:.0f} masked images/s; "
          f"worst map difference {diff:.1e}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["shapes", "r50"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--boxes", type=int, default=8, help="context re-scores per image (the first K detections)")
    p.add_argument("--masks", type=int, default=64, help="D-RISE masks")
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="shapes only, 3 rounds, 32 masks")
    add_threads_arg(p, default=None)
    args = p.parse_args()
    if args.quick:
        args.models, args.reps, args.masks = ["shapes"], 3, 32
    threads = set_threads(args.threads)
    device = _device(args.device)
    print(f"batch 1 vs {args.batch}; {threads} torch thread(s); device {device}")
    for model in args.models:
        measure(model, args.boxes, args.masks, args.batch, args.reps, device)


if __name__ == "__main__":
    main()
