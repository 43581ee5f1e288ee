"""Per-box gradient CAMs for K boxes: cost relative to one forward, against grad-cam's ``GradCAM``.

pytest-camaudit: one forward with autograd for the image, then one backward per box
(``torch.autograd.grad`` on the FPN levels the model consumed, graph retained); every gradient
method of a box shares that backward. grad-cam: one ``GradCAM(...)(x, targets=[box target])``
call per box — a forward and a backward each (a list of K targets would sum them into one map).
grad-cam cannot hook the FPN's dict output (no gradients arrive: its issues #42 / #228 / #384),
so it is given ``backbone.body.layer4``, the last tensor-valued layer; the script prints what
happens with ``model.backbone`` too.

    python benchmarks/bench_gradients.py            # K = 1, 4, 16 boxes, 320 px, 1 thread
    python benchmarks/bench_gradients.py --boxes 8 --size 480

Times are noisy on a shared machine; the ratios to one forward measured in the same run are
the figures to quote.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torchvision.models.detection as tvd

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods import cam_for
from pytest_camaudit.zoo.world import make_layout, render


def timed(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--boxes", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--size", type=int, default=320)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    k_max = max(args.boxes)
    model = tvd.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, min_size=args.size, max_size=args.size,
        rpn_post_nms_top_n_test=200, box_score_thresh=0.0, box_detections_per_img=k_max,
    ).eval()
    pixels = render(make_layout(20_000_003))
    x = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)
    detector = Detector.wrap(model, name="fasterrcnn_resnet50_fpn", device="cpu")

    with torch.no_grad():
        model([x])  # warm-up
        t_fwd = timed(lambda: model([x]))

    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
    from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform

    try:
        with GradCAM(model, [model.backbone], reshape_transform=fasterrcnn_reshape_transform) as broken:
            det0 = CamEngine(detector).analyze(load_image(pixels)).detections[0]
            broken(x[None], targets=[FasterRCNNBoxScoreTarget([det0.label], [torch.tensor(det0.box)])])
        fpn_note = "ran"
    except Exception as exc:  # what users of grad-cam hit
        fpn_note = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"

    print(f"fasterrcnn_resnet50_fpn (random weights, seed {args.seed}) at {args.size} px, {args.threads} thread(s)")
    print(f"one plain forward: {t_fwd:.3f} s")
    print(f"grad-cam GradCAM with target_layers=[model.backbone] (the FPN dict): {fpn_note}")
    print(f"{'K':>3}  {'ours (s)':>9} {'ours / fwd':>10} {'1 fwd + K bwd':>14}   {'grad-cam (s)':>12} {'grad-cam / fwd':>14}   speed-up")
    for k in args.boxes:
        def ours(k: int = k) -> None:
            engine = CamEngine(detector, "gradcam")
            a = engine.analyze(load_image(pixels))
            for d in a.detections[:k]:
                cam_for(a, "gradcam", d)

        engine = CamEngine(detector, "gradcam")
        a = engine.analyze(load_image(pixels))
        dets = a.detections[:k]
        t_graph = timed(lambda: CamEngine(detector, "gradcam").analyze(load_image(pixels)))
        t_ours = timed(ours)
        t_bwd = (t_ours - t_graph) / max(1, len(dets))

        def theirs(dets: list = dets) -> None:
            with GradCAM(model, [model.backbone.body.layer4]) as cam:
                for d in dets:
                    cam(x[None], targets=[FasterRCNNBoxScoreTarget([d.label], [torch.tensor(d.box)])])

        t_theirs = timed(theirs)
        print(f"{len(dets):>3}  {t_ours:9.3f} {t_ours / t_fwd:10.2f} {f'{t_graph / t_fwd:.2f} + {len(dets)} x {t_bwd / t_fwd:.2f}':>14}   "
              f"{t_theirs:12.3f} {t_theirs / t_fwd:14.2f}   {t_theirs / t_ours:6.1f}x")
    assert np.isfinite(t_fwd)


if __name__ == "__main__":
    main()
