"""``python -m pytest_camaudit.zoo train|eval|cue-test|make-dataset`` — the zoo's command line.

Every shipped detector is trained with ``train --variant NAME`` (``shapes``, ``shapes-shortcut``:
the Faster R-CNNs; ``shapes-yolo``, ``shapes-yolo-shortcut``: ultralytics YOLO11n, which needs
``pip install 'pytest-camaudit[yolo]'``) and evaluated with ``eval --model NAME``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .catalog import MODELS, WORLDS, ZOO_MODELS, checkpoint_architecture


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_camaudit.zoo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a shapes detector from scratch")
    p.add_argument("--variant", choices=list(ZOO_MODELS), default="shapes",
                   help="the zoo detector to train (its world: shapes-shortcut for the *-shortcut twins, else shapes)")
    p.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    p.add_argument("--iterations", type=int, default=None, help="Faster R-CNN iterations")
    p.add_argument("--epochs", type=int, default=None, help="YOLO epochs (default: 8, the shortcut twin 16)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice; YOLO: 1)")

    p = sub.add_parser("eval", help="mAP@0.5, per-class AP and recall on held-out scenes")
    p.add_argument("--model", default=None, help=f"zoo name ({', '.join(ZOO_MODELS)}) or checkpoint path (default: shapes)")
    p.add_argument("--variant", choices=[*WORLDS, *(m for m in ZOO_MODELS if m not in WORLDS)], default=None,
                   help="world to evaluate on (default: the model's own); a zoo detector's name that is not a world, "
                        "as given to train (shapes-yolo…), evaluates that detector on its own world")
    p.add_argument("--scenes", type=int, default=200)

    p = sub.add_parser("cue-test", help="how much the detector depends on the spurious cue")
    p.add_argument("--model", action="append", default=None,
                   help="zoo name or checkpoint path (repeatable; default: both shipped Faster R-CNNs)")
    p.add_argument("--scenes", type=int, default=200)

    p = sub.add_parser("make-dataset", help="write scenes as PNG + COCO annotations (or as a YOLO dataset, a VOC root)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--format", choices=["coco", "yolo", "voc"], default="coco",
                   help="coco: OUT/annotations.json + OUT/images/; yolo: OUT/data.yaml + images/val/ + labels/val/; "
                        "voc: OUT/Annotations/, ImageSets/Main/val.txt, JPEGImages/ (the same boxes in each)")
    p.add_argument("--variant", choices=list(WORLDS), default="shapes")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=20_000_000)
    p.add_argument("--curated", action="store_true",
                   help="keep only scenes where every object is <= 25%% occluded and >= 20 px across "
                        "(seeds are taken in order from --first-seed until --count scenes qualify)")
    return parser


def _train(args: argparse.Namespace) -> int:
    import torch

    from .train import TRAIN_DEFAULTS, train

    if MODELS[args.variant].architecture == "yolo":
        return _train_yolo(args)
    if args.epochs is not None:
        raise SystemExit(f"--epochs applies to the YOLO detectors, not {args.variant} (use --iterations)")
    if args.threads:
        torch.set_num_threads(args.threads)
    kwargs = {k: v for k, v in {"iterations": args.iterations, "batch_size": args.batch_size, "seed": args.seed}.items() if v is not None}
    train(MODELS[args.variant].world, args.out, **{**{k: TRAIN_DEFAULTS[k] for k in kwargs}, **kwargs}, log=lambda m: print(m, flush=True))
    return 0


def _train_yolo(args: argparse.Namespace) -> int:
    from .yolo import train_yolo, yolo_schedule

    if args.iterations is not None:
        raise SystemExit(f"--iterations applies to the Faster R-CNNs, not {args.variant} (use --epochs)")
    given = {"epochs": args.epochs, "batch": args.batch_size, "seed": args.seed, "threads": args.threads}
    kwargs = {**yolo_schedule(args.variant), **{k: v for k, v in given.items() if v is not None}}
    train_yolo(args.out, log=lambda m: print(m, flush=True), **kwargs)
    return 0


def _load(name: str) -> tuple[Any, dict[str, Any]]:
    """``(Detector, meta)`` of a zoo name or checkpoint file, either architecture, as its evaluation runs it."""
    arch = MODELS[name].architecture if name in MODELS else checkpoint_architecture(name)
    if arch == "yolo":
        from .yolo import load_yolo_checkpoint, yolo_evaluation_detector

        model, classes, meta = load_yolo_checkpoint(name)
        return yolo_evaluation_detector(model, int(meta["imgsz"]), class_names=classes), meta
    from ..detectors.base import Detector
    from .model import load_zoo_detector

    net, classes, meta = load_zoo_detector(name)
    return Detector.wrap(net, classes, name=str(meta["name"]), meta=meta), meta


def _eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_model

    if args.variant is not None and args.variant not in WORLDS:  # `eval --variant shapes-yolo`, as `train` takes it
        if args.model not in (None, args.variant):
            raise SystemExit(f"--variant {args.variant} names a detector, and --model names another ({args.model}); give one")
        args.model, args.variant = args.variant, None
    model, meta = _load(args.model or "shapes")
    variant = args.variant or meta.get("variant", "shapes")
    t = time.perf_counter()
    result = evaluate_model(model, variant, args.scenes, progress=print)
    print(f"model {meta['name']} ({meta['path']}), world {variant!r}, {result.n_images} scenes, {time.perf_counter() - t:.1f} s")
    print(result.table())
    return 0


def _cue_test(args: argparse.Namespace) -> int:
    from .evaluate import cue_dependence

    for name in args.model or ["shapes", "shapes-shortcut"]:
        model, meta = _load(name)
        print(f"== {meta['name']} ({meta['path']}), {args.scenes} held-out scenes")
        print(cue_dependence(model, args.scenes).summary())
    return 0


def _make_dataset(args: argparse.Namespace) -> int:
    from .dataset import write_coco_dataset
    from .world import clear_view, make_layout

    seeds: list[int] = []
    seed = args.first_seed
    while len(seeds) < args.count:
        if not args.curated or clear_view(make_layout(seed)):
            seeds.append(seed)
        seed += 1
    if args.format == "coco":
        path = write_coco_dataset(args.out, seeds, args.variant)
    else:
        import tempfile

        from .formats import coco_to_voc, coco_to_yolo

        with tempfile.TemporaryDirectory() as tmp:
            coco = write_coco_dataset(Path(tmp), seeds, args.variant)
            path = (coco_to_yolo if args.format == "yolo" else coco_to_voc)(coco, Path(tmp) / "images", args.out)
    print(f"wrote {args.count} scenes (seeds {seeds[0]}..{seeds[-1]}) and {path}")
    return 0


COMMANDS = {"train": _train, "eval": _eval, "cue-test": _cue_test, "make-dataset": _make_dataset}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
