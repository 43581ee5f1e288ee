"""D-RISE: time per 1000 masks, and per masked image relative to one plain forward.

The masked forwards run once per image for every detection of it (each box's map re-weights the
same masks), so the figure that matters is the time per 1000 masks; the map of each further box
costs only the weighted sum of the masks, printed too.

    python benchmarks/bench_drise.py                              # shapes detector, 300 masks
    python benchmarks/bench_drise.py --model fasterrcnn_mobilenet_v3_large_320_fpn --masks 200
    python benchmarks/bench_drise.py --quick                      # 32 masks, batches of 16

``--model`` is any name ``_common.load`` takes (``shapes``, ``shapes-shortcut``, ``r50``, a
torchvision builder: random weights, seed 0, every box kept); the image is always the shapes scene.

Times are noisy on a shared machine; the ratio to one forward in the same run is the stable figure.
"""

from __future__ import annotations

import argparse
import time

from _common import add_threads_arg, is_zoo, load, median_time, scene_image, set_threads

from pytest_camaudit.methods.drise import DriseConfig, drise_cam


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="shapes")
    p.add_argument("--masks", type=int, default=300, help="masks actually run (the figure is scaled to 1000)")
    p.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    p.add_argument("--quick", action="store_true", help="32 masks, batches of 16")
    add_threads_arg(p)
    args = p.parse_args()
    if args.quick:
        args.masks, args.batch = 32, [16]
    threads = set_threads(args.threads)
    # random weights score low: keep every box of a torchvision model so there is one to explain
    bench = load(args.model, score_thresh=None if is_zoo(args.model) else 0.0, image=scene_image())
    pixels = bench.image
    engine = bench.engine("drise")
    t_fwd = median_time(bench.forward(), 5)
    print(f"{args.model}, image {pixels.shape[1]}x{pixels.shape[0]}, {threads} thread(s); one forward {t_fwd * 1000:.1f} ms")
    for batch in args.batch:
        engine.clear()
        a = engine.analyze(bench.loaded())
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
