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
480×640 input) and on the embedded ``shapes`` detector; (issue 11) on Hugging Face DETR and RT-DETR
(``detr``, ``rt-detr``: the R50 models of ``DetrConfig`` / ``RTDetrConfig``'s defaults, random
weights, torch seed 0, built offline; 480×640 noise, which DETR's processor is told to keep at
480×640 and RT-DETR's stretches to its default 640×640). Their ``bare``
is what a plain accuracy test with transformers pays: processor, model and
``post_process_object_detection`` under ``torch.no_grad()``; grad-cam has no recipe for them (no seed column).
And on ultralytics YOLO (``--yolo-only``; the ``yolo`` extra): the shipped ``shapes-yolo`` on its
160×160 scene and a random ``yolo11n.yaml`` at ``imgsz`` 640 on 480×640 noise. Their ``bare`` is
what ultralytics' predictor does, without ``predict()``'s own overhead: letterbox, the module,
``non_max_suppression`` and ``scale_boxes`` under ``torch.no_grad()`` (``detectors.ultralytics.runtime.yolo_detections``).
And on ultralytics RT-DETR (``--rtdetr-only``; the ``yolo`` extra): ``rtdetr-l.yaml`` (33 M parameters, random
weights, torch seed 0, batch norms set from one batch of noise — fresh, in eval mode, it has vanishing
activations and detects nothing) at ``imgsz`` 640 on 480×640 noise. Its ``bare`` is what ``RTDETRPredictor``
does without ``predict()``: the stretch to 640×640, the module under ``torch.no_grad()``, ``score > conf``,
``[:max_det]``, boxes scaled to the image (no NMS).

    python benchmarks/bench_overhead.py            # both models (201 pairs on shapes, 7 on R50)
    python benchmarks/bench_overhead.py --quick    # shapes only
    python benchmarks/bench_overhead.py --quick --reps 21 --threads 2
    python benchmarks/bench_overhead.py --hf-only --threads 2   # DETR and RT-DETR only (21 pairs each)
    python benchmarks/bench_overhead.py --yolo-only --threads 2 # the YOLOs only (101 pairs each)
    python benchmarks/bench_overhead.py --rtdetr-only --threads 2   # rtdetr-l only (7 pairs)

Models and images come from ``_common.load``: ``shapes`` on its 160×160 scene, ``r50`` (random
weights, torch seed 0, torchvision's default resize to 800 px) on 480×640 noise.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from _common import Bench, Paired, add_threads_arg, load, paired, set_threads

Workflow = Callable[[], object]


def workflows(bench: Bench) -> dict[str, Workflow]:
    """The three ways of getting detections (and a CAM) for ``bench.image``, as zero-argument calls."""
    from pytorch_grad_cam import EigenCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget
    from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform

    from pytest_camaudit.methods import cam_for

    model, tensor, loaded = bench.model, bench.tensor, bench.loaded()

    def seed() -> None:
        with torch.no_grad():
            out = model([tensor])[0]
        keep = out["scores"] > 0.5
        targets = [FasterRCNNBoxScoreTarget(labels=out["labels"][keep], bounding_boxes=out["boxes"][keep])]
        with EigenCAM(model, [model.backbone], reshape_transform=fasterrcnn_reshape_transform) as cam:
            cam(tensor[None], targets=targets)

    def ours() -> None:
        cam_for(bench.engine("eigencam").analyze(loaded), "eigencam")

    return {"bare": bench.forward(), "seed": seed, "camaudit": ours}


def hf_workflows(family: str) -> dict[str, Workflow]:
    """``bare`` and ``camaudit`` for a random DETR-R50 (``family="detr"``) or RT-DETR-R50 (``"rt-detr"``)."""
    from _common import noise_image

    from pytest_camaudit.detectors.transformers.folders import hf_detector
    from pytest_camaudit.detectors.transformers.runtime import import_transformers
    from pytest_camaudit.engine.engine import CamEngine
    from pytest_camaudit.engine.images import load_image
    from pytest_camaudit.methods import cam_for

    hf = import_transformers()
    torch.manual_seed(0)
    if family == "detr":
        config = hf.DetrConfig(use_timm_backbone=False, use_pretrained_backbone=False, attn_implementation="eager")
        model, processor = hf.DetrForObjectDetection(config).eval(), hf.DetrImageProcessor(size={"shortest_edge": 480, "longest_edge": 640})
    else:
        model, processor = hf.RTDetrForObjectDetection(hf.RTDetrConfig(attn_implementation="eager")).eval(), hf.RTDetrImageProcessor()
    detector = hf_detector(model, processor, name=family)
    image = noise_image()
    loaded, threshold = load_image(image), detector.family.threshold

    def bare() -> object:
        with torch.no_grad():
            out = model(**processor(images=image, return_tensors="pt", input_data_format="channels_last"))
            return processor.post_process_object_detection(out, threshold=threshold, target_sizes=[image.shape[:2]])

    def ours() -> None:
        cam_for(CamEngine(detector, "eigencam").analyze(loaded), "eigencam")

    return {"bare": bare, "camaudit": ours}


def yolo_workflows(name: str) -> dict[str, Workflow]:
    """``bare`` and ``camaudit`` for ``shapes-yolo`` (its scene) or a random ``yolo11n.yaml`` (480×640 noise)."""
    from _common import noise_image, scene_image

    from pytest_camaudit.detectors.loading import load_detector
    from pytest_camaudit.detectors.ultralytics.runtime import yolo_detections
    from pytest_camaudit.engine.engine import CamEngine
    from pytest_camaudit.engine.images import load_image
    from pytest_camaudit.methods import cam_for

    torch.manual_seed(0)
    detector = load_detector(name, device="cpu")
    family, net = detector.family, detector.model
    image = scene_image() if name == "shapes-yolo" else noise_image()
    loaded, imgsz = load_image(image), family.image_size(net)

    def bare() -> object:
        return yolo_detections(net, [image], family.conf, family.iou, imgsz, family.max_det)

    def ours() -> None:
        cam_for(CamEngine(detector, "eigencam").analyze(loaded), "eigencam")

    return {"bare": bare, "camaudit": ours}


def rtdetr_workflows() -> dict[str, Workflow]:
    """``bare`` and ``camaudit`` for a random ``rtdetr-l.yaml`` (batch norms from noise) at 640 on 480×640 noise."""
    from _common import noise_image

    from pytest_camaudit.detectors.ultralytics.rtdetr import rtdetr_detector, stretch
    from pytest_camaudit.detectors.ultralytics.runtime import import_ultralytics
    from pytest_camaudit.engine.engine import CamEngine
    from pytest_camaudit.engine.images import load_image
    from pytest_camaudit.methods import cam_for

    import_ultralytics()
    from ultralytics.nn.tasks import RTDETRDetectionModel

    torch.manual_seed(0)
    net = RTDETRDetectionModel("rtdetr-l.yaml", verbose=False)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:  # one train-mode forward of noise with momentum 1 sets every batch norm's statistics
        m.momentum = 1.0
    with torch.no_grad():
        net.train()(torch.rand(2, 3, 128, 160, generator=torch.Generator().manual_seed(0)))
    for m in norms:
        m.momentum = 0.03
    detector = rtdetr_detector(net.eval(), imgsz=640, name="rtdetr-l.yaml")
    family, image = detector.family, noise_image()
    loaded, canvas, (h0, w0) = load_image(image), family.canvas(net), image.shape[:2]

    def bare() -> object:
        x = torch.from_numpy(stretch(image, canvas)).permute(2, 0, 1)[None].contiguous().float().div(255)
        with torch.no_grad():
            rows = net(x)[0][0]
        rows = rows[rows[:, 4] > family.conf][: family.max_det]
        cx, cy, w, h = rows[:, :4].unbind(-1)
        return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1) * rows.new_tensor([w0, h0, w0, h0]), rows[:, 4:]

    def ours() -> None:
        cam_for(CamEngine(detector, "eigencam").analyze(loaded), "eigencam")

    return {"bare": bare, "camaudit": ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=None, help="pairs per ratio (default: 201 on shapes, 7 on R50)")
    parser.add_argument("--quick", action="store_true", help="shapes model only")
    parser.add_argument("--hf-only", action="store_true", help="DETR and RT-DETR only (needs the hf extra)")
    parser.add_argument("--yolo-only", action="store_true", help="the YOLOs only (needs the yolo extra)")
    parser.add_argument("--rtdetr-only", action="store_true", help="ultralytics rtdetr-l only (needs the yolo extra)")
    add_threads_arg(parser, default=None)
    args = parser.parse_args()
    threads = set_threads(args.threads)

    only = args.hf_only or args.yolo_only or args.rtdetr_only
    cases = [] if only else [("shapes (160x160 scene)", workflows(load("shapes")), args.reps or 201)]
    if not (args.quick or only):
        cases.append(("fasterrcnn_resnet50_fpn, random weights (480x640)", workflows(load("r50")), args.reps or 7))
    if not (args.quick or args.yolo_only or args.rtdetr_only):
        cases += [(f"{f} R50, random weights (480x640)", hf_workflows(f), args.reps or 21) for f in ("detr", "rt-detr")]
    if not (args.quick or args.hf_only or args.rtdetr_only):
        cases += [("shapes-yolo (160x160 scene)", yolo_workflows("shapes-yolo"), args.reps or 101),
                  ("yolo11n.yaml, random weights (480x640 at 640)", yolo_workflows("yolo11n.yaml"), args.reps or 101)]
    if not (args.quick or args.hf_only or args.yolo_only):
        cases.append(("rtdetr-l.yaml, random weights (480x640 at 640)", rtdetr_workflows(), args.reps or 7))

    # every camaudit pair before any seed pair: grad-cam slows every later forward of the process
    ours: dict[str, Paired] = {name: paired(w["bare"], w["camaudit"], reps) for name, w, reps in cases}
    seed: dict[str, Paired] = {name: paired(w["bare"], w["seed"], reps) for name, w, reps in cases if "seed" in w}
    print(f"torch {torch.__version__}, {threads} threads; medians of interleaved pairs, "
          "ratio = median of per-pair ratios [quartiles]")
    print(f"{'model':<52}{'pairs':>6}{'bare s':>9}{'ours s':>9}{'ours/bare':>22}{'bare s':>9}{'seed s':>9}{'seed/bare':>11}")
    for name, _, reps in cases:
        p1, p2 = ours[name], seed.get(name)
        tail = f"{p2.a:>9.4f}{p2.b:>9.4f}{p2.ratio:>11.2f}" if p2 else f"{'-':>9}{'-':>9}{'-':>11}"
        print(f"{name:<52}{reps:>6}{p1.a:>9.4f}{p1.b:>9.4f}{p1.spread():>22}{tail}")


if __name__ == "__main__":
    main()
