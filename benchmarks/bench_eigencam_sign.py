"""Where EigenCAM's mass lands, by how its sign is chosen: the detections or the mean activation.

The first principal component is defined up to sign (grad-cam issue #364). For every held-out
``shapes`` scene this prints how much of the EigenCAM map lies inside the ground-truth boxes,
relative to the boxes' share of the image (1 = chance), for the shipped orientation (toward the
detector's score-weighted detections) and for orientation by the mean activation alone.

    python benchmarks/bench_eigencam_sign.py              # 40 scenes, seeds 20000000..
    python benchmarks/bench_eigencam_sign.py --scenes 100
    python benchmarks/bench_eigencam_sign.py --quick     # 5 scenes
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import add_threads_arg, load, set_threads

from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods import cam_for
from pytest_camaudit.methods.eigencam import eigencam_component
from pytest_camaudit.methods.maps import normalise
from pytest_camaudit.zoo.world import make_scene


def box_ratio(values: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> float:
    """Map mass inside the union of ``boxes`` over the union's share of the image."""
    inside = np.zeros(values.shape, dtype=bool)
    for x1, y1, x2, y2 in boxes:
        inside[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] = True
    total = float(values.sum())
    return float(values[inside].sum()) / total / float(inside.mean()) if total > 0 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=40)
    p.add_argument("--seed", type=int, default=20_000_000, help="first held-out scene seed")
    p.add_argument("--model", default="shapes", help="shapes, shapes-shortcut or a zoo checkpoint file")
    p.add_argument("--quick", action="store_true", help="5 scenes")
    add_threads_arg(p, default=None)
    args = p.parse_args()
    if args.quick:
        args.scenes = 5
    set_threads(args.threads)
    engine = load(args.model).engine("eigencam")
    shipped, by_mean = [], []
    for seed in range(args.seed, args.seed + args.scenes):
        scene = make_scene(seed)
        analysis = engine.analyze(load_image(scene.image))
        shipped.append(box_ratio(cam_for(analysis, "eigencam").values, scene.boxes))
        proj, _ = eigencam_component(analysis.levels, analysis.geometry, analysis.grid)  # sign: mean activation
        by_mean.append(box_ratio(normalise(analysis.to_image(proj).clamp_min(0)), scene.boxes))
    print(f"{args.model}: EigenCAM mass in the ground-truth boxes / the boxes' share of the image, {args.scenes} scenes")
    for name, r in (("toward the detections (shipped)", shipped), ("toward the mean activation", by_mean)):
        a = np.array(r)
        print(f"  {name:34s} mean {np.nanmean(a):.2f}x  min {np.nanmin(a):.2f}x  above chance {np.mean(a > 1):.0%}")


if __name__ == "__main__":
    main()
