"""AblationCAM: this plugin's fixed-box ablation against grad-cam's ``AblationCAM`` + ``AblationLayerFasterRCNN``.

Same model, image, detection and thread count, one run. Prints the time per image of each
(grad-cam: its forward + one re-run of RPN and RoI heads per FPN channel on the cached FPN output;
ours: the engine's one forward + the box head on ablated copies of the box's RoI window), the
speed-up, and how the two agree:

* channel weights ``(s - s_c) / s`` on the level the box is pooled from, ours with grad-cam's
  ablation value -1000 against grad-cam's;
* maps (Pearson r on the original image's pixels): grad-cam's against ours *rendered grad-cam's
  way* (our weights on ``fasterrcnn_reshape_transform``'s ``|A|`` at the ``'pool'`` grid, stretched
  over the image by ``scale_cam_image``) — same weights, same rendering, so this isolates the
  weights — and against our own map (box-local, exact geometry).

Models: ``fasterrcnn_resnet50_fpn`` with random weights from a fixed seed (no download; what the
issue names), and ``shapes``, the shipped trained detector (64-channel FPN: grad-cam's layer
hard-codes 256 channels per level, so it runs through a subclass that changes only that number).

    python benchmarks/bench_ablation.py                          # R50, 160 px, 50 proposals, 1 thread
    python benchmarks/bench_ablation.py --model shapes
    python benchmarks/bench_ablation.py --size 320 --threads 2
    python benchmarks/bench_ablation.py --quick                  # = --model shapes

Wall times are noisy on a shared machine; the ratio within one run is the figure to quote.
"""

from __future__ import annotations

import argparse
import time
from collections import OrderedDict

import numpy as np
import torch
from _common import SCENE_SEED, Bench, add_threads_arg, load, scene_image, set_threads

from pytest_camaudit.methods.ablation import ablation_cam, ablation_weights, local_scorer


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def build(args: argparse.Namespace) -> Bench:
    """The model on the shapes scene ``args.scene`` (R50: resized, proposals capped, every box kept)."""
    image = scene_image(args.scene)
    if args.model == "shapes":
        return load("shapes", image=image)
    return load("fasterrcnn_resnet50_fpn", seed=args.seed, score_thresh=0.0, image=image, min_size=args.size, max_size=args.size,
                rpn_pre_nms_top_n_test=4 * args.proposals, rpn_post_nms_top_n_test=args.proposals, box_detections_per_img=5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["fasterrcnn_resnet50_fpn", "shapes"], default="fasterrcnn_resnet50_fpn")
    p.add_argument("--size", type=int, default=160, help="R50: min_size = max_size of the resize")
    p.add_argument("--proposals", type=int, default=50, help="R50: RPN proposals kept at test time (both methods)")
    p.add_argument("--seed", type=int, default=0, help="R50 weights seed")
    p.add_argument("--scene", type=int, default=SCENE_SEED, help="shapes scene seed used as the image")
    p.add_argument("--batch", type=int, default=32, help="grad-cam's AblationCAM batch_size")
    p.add_argument("--quick", action="store_true", help="the shapes model (grad-cam re-runs 320 channels, not 1280)")
    add_threads_arg(p)
    args = p.parse_args()
    if args.quick:
        args.model = "shapes"
    threads = set_threads(args.threads)
    bench = build(args)
    model, pixels, per_level = bench.model, bench.image, bench.per_level_channels
    engine = bench.engine("ablationcam")

    t0 = time.perf_counter()  # ours, from scratch: one forward + the box head on ablated windows
    analysis = engine.analyze(bench.loaded())
    det = analysis.detections[0]
    ours = ablation_cam(analysis, det).values
    t_ours = time.perf_counter() - t0

    from pytorch_grad_cam import AblationCAM
    from pytorch_grad_cam.ablation_layer import AblationLayerFasterRCNN
    from pytorch_grad_cam.utils.image import scale_cam_image
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
    from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform

    class Layer(AblationLayerFasterRCNN):
        """grad-cam's ``AblationLayerFasterRCNN.__call__`` with its 256 channels per level a parameter."""

        def __call__(self, x):  # type: ignore[no-untyped-def]
            result = self.activations
            names = list(result)
            for i in range(result[names[-1]].size(0)):
                result[names[int(self.indices[i] // per_level)]][i, int(self.indices[i] % per_level), :, :] = -1000
            return result

    layer = AblationLayerFasterRCNN() if per_level == 256 else Layer()
    x = bench.tensor[None]
    targets = [FasterRCNNBoxScoreTarget(labels=[det.label], bounding_boxes=[torch.tensor(det.box)])]
    cam = AblationCAM(model, [model.backbone], reshape_transform=fasterrcnn_reshape_transform, ablation_layer=layer, batch_size=args.batch)
    captured: dict[str, np.ndarray] = {}
    real = cam.get_cam_weights
    cam.get_cam_weights = lambda *a, **k: captured.setdefault("w", real(*a, **k))  # type: ignore[method-assign]
    t0 = time.perf_counter()
    theirs = cam(x, targets=targets)[0]
    t_theirs = time.perf_counter() - t0
    cam.activations_and_grads.release()

    scorer = local_scorer(analysis, det)
    li = list(analysis.levels).index(scorer.level)
    box_level = slice(li * per_level, (li + 1) * per_level)
    w_theirs = captured["w"][0]
    w_ours = ablation_weights(scorer, -1000.0).numpy()
    w_full = np.zeros_like(w_theirs)
    w_full[box_level] = w_ours
    acts = fasterrcnn_reshape_transform(OrderedDict((k, v[None]) for k, v in analysis.levels.items()))[0].numpy()
    ours_gc_way = scale_cam_image(np.maximum((w_full[:, None, None] * acts).sum(0), 0)[None], (pixels.shape[1], pixels.shape[0]))[0]
    ours_1000 = ablation_cam(analysis, det, value=-1000.0).values

    print(f"{args.model}, image {pixels.shape[1]}x{pixels.shape[0]} resized to {analysis.geometry.resized}, {threads} thread(s)")
    print(f"detection: {det.describe()}; pooled from level {scorer.level!r}; re-scored on its box: {scorer.base:.4f}")
    print(f"grad-cam AblationCAM + AblationLayerFasterRCNN : {t_theirs:8.2f} s / image ({len(w_theirs)} channel re-runs)")
    print(f"pytest-camaudit ablationcam (forward + ablation): {t_ours:8.3f} s / image ({per_level} box-head rows)")
    print(f"speed-up                                        : {t_theirs / t_ours:8.1f}x")
    print(f"channel weights on the box's level, min / mean / max: grad-cam {w_theirs[box_level].min():+.3f} / "
          f"{w_theirs[box_level].mean():+.3f} / {w_theirs[box_level].max():+.3f}; ours at -1000 {w_ours.min():+.3f} / "
          f"{w_ours.mean():+.3f} / {w_ours.max():+.3f}; max |difference| {np.abs(w_ours - w_theirs[box_level]).max():.3f}")
    print(f"grad-cam's weights on the levels this box is not pooled from: mean |w| {np.abs(np.delete(w_theirs, np.arange(len(w_theirs))[box_level])).mean():.3f}")
    print("Pearson r with grad-cam's map, original pixels:")
    print(f"  ours rendered grad-cam's way (|A| on the 'pool' grid, stretched)  {pearson(ours_gc_way, theirs):+.3f}")
    print(f"  ours (value 0, box-local, exact geometry)                        {pearson(ours, theirs):+.3f}")
    print(f"  ours (value -1000, box-local, exact geometry)                    {pearson(ours_1000, theirs):+.3f}")


if __name__ == "__main__":
    main()
