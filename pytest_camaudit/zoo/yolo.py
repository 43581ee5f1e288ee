"""``shapes-yolo``: an Ultralytics YOLO detector trained offline on the shapes world.

The network is built from a YAML file shipped inside the ``ultralytics`` package and trained with
Ultralytics' own ``DetectionTrainer``; nothing is downloaded (:func:`offline_ultralytics`,
:func:`_training_patches`). The checkpoint is a plain dictionary that loads with
``torch.load(..., weights_only=True)``::

    {"format": "pytest-camaudit-zoo/yolo/1", "name": str, "classes": [str, ...],
     "yaml": {...}, "imgsz": int, "meta": {...}, "state_dict": {str: fp16 Tensor}}

``classes`` are the plugin's names (``classes[0] == "__background__"``); Ultralytics' class ``k`` is
the plugin's label ``k + 1``. ``ultralytics`` (not a dependency) is imported lazily, in functions.
"""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from ..detectors.base import Detector
from ..detectors.ultralytics.runtime import ImageSize, offline_ultralytics
from ..detectors.ultralytics.runtime import yolo_detections as raw_yolo_detections
from .catalog import CHECKPOINT_FORMATS, MODELS, names_of
from .evaluate import EVAL_SEED_BASE, CueDependence, Detections, EvalResult, cue_dependence, evaluate_model
from .model import ZooCheckpointError, read_checkpoint
from .world import CLASSES, DEFAULT_SIZE, VARIANTS, make_layout, render_variant

__all__ = ["YOLO_FORMAT", "YOLO_MODELS", "evaluate_yolo", "load_yolo_checkpoint", "offline_ultralytics", "save_yolo_checkpoint",
           "train_yolo", "write_yolo_dataset", "yolo_cue_dependence", "yolo_detections", "yolo_schedule"]

YOLO_FORMAT = CHECKPOINT_FORMATS["yolo"]
YOLO_MODELS: tuple[str, ...] = names_of("yolo")
"""Names of the YOLO checkpoints shipped in ``zoo/weights`` (``shapes-yolo``, ``shapes-yolo-shortcut``)."""

VAL_SEED_BASE = 5_000_000
"""Validation scenes: above the training seeds (< 1,000,000), below ``EVAL_SEED_BASE``."""

LICENSE_NOTE = (
    "Architecture and trainer: Ultralytics YOLO, AGPL-3.0 (https://ultralytics.com/license); weights "
    "trained from scratch on the procedural shapes world, no pretrained weights."
)

YOLO_DEFAULTS: dict[str, Any] = {
    "arch": "yolo11n.yaml", "epochs": 8, "batch": 16, "n_train": 4000, "n_val": 200, "seed": 0, "threads": 1,
}
"""Schedule of ``shapes-yolo`` (160 px; 1 thread: 2 ran ~10x slower on a loaded 2-core box)."""

TRAIN_OVERRIDES: dict[str, Any] = {
    "mosaic": 1.0, "close_mosaic": 2, "scale": 0.3, "translate": 0.1, "fliplr": 0.5, "flipud": 0.5,
    "nbs": 16, "optimizer": "AdamW", "lr0": 0.002, "cos_lr": True, "warmup_epochs": 1.0,
}
"""Ultralytics hyper-parameters that differ from its defaults (augmentation and optimiser)."""


@contextlib.contextmanager
def _training_patches(threads: int) -> Iterator[None]:
    """Patch, for the duration, what ``YOLO_OFFLINE`` and the trainer's arguments leave alone.

    * ``check_det_dataset`` always calls ``check_font`` (an HTTP ``HEAD`` and a download of
      Arial.ttf when the font is not cached), even with ``plots=False``: made a no-op.
    * ``select_device("cpu")`` calls ``torch.set_num_threads(min(8, cpu_count - 1))`` (1 thread on
      2 cores): its ``NUM_THREADS`` becomes ``threads``.
    """
    offline_ultralytics()
    from ultralytics.data import utils as data_utils
    from ultralytics.utils import torch_utils

    saved = data_utils.check_font, torch_utils.NUM_THREADS, torch.get_num_threads()
    data_utils.check_font = lambda *args, **kwargs: None
    torch_utils.NUM_THREADS = threads
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        data_utils.check_font, torch_utils.NUM_THREADS = saved[:2]
        torch.set_num_threads(saved[2])


def write_yolo_dataset(
    out_dir: Path | str,
    variant: str = "shapes",
    n_train: int = YOLO_DEFAULTS["n_train"],
    n_val: int = YOLO_DEFAULTS["n_val"],
    train_seed_base: int = 0,
    val_seed_base: int = VAL_SEED_BASE,
) -> Path:
    """Render scenes of world ``variant`` in Ultralytics' YOLO format.

    Writes ``images/{train,val}/scene-<seed>.png``, ``labels/{train,val}/scene-<seed>.txt`` (one
    ``class cx cy w h`` row per object: class 0-based, i.e. the plugin's label - 1; coordinates
    normalised to [0, 1]) and ``data.yaml``. Training seeds are ``train_seed_base ..`` (below
    1,000,000, the training range); validation seeds ``val_seed_base ..`` must lie in
    [1,000,000, ``EVAL_SEED_BASE``), clear of both training and evaluation scenes.

    Returns:
        Path of ``data.yaml``.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown world variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if train_seed_base < 0 or train_seed_base + n_train > 1_000_000:
        raise ValueError("training seeds must lie in [0, 1,000,000)")
    if not 1_000_000 <= val_seed_base <= EVAL_SEED_BASE - n_val:
        raise ValueError(f"validation seeds must lie in [1,000,000, {EVAL_SEED_BASE})")
    out = Path(out_dir)
    for split, base, count in (("train", train_seed_base, n_train), ("val", val_seed_base, n_val)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for seed in range(base, base + count):
            layout = make_layout(seed)
            img = cv2.cvtColor(render_variant(layout, variant), cv2.COLOR_RGB2BGR)
            cv2.imwrite(str(out / "images" / split / f"scene-{seed}.png"), img)
            s = float(layout.size)
            rows = [
                f"{label - 1} {(x1 + x2) / 2 / s:.6f} {(y1 + y2) / 2 / s:.6f} {(x2 - x1) / s:.6f} {(y2 - y1) / s:.6f}"
                for (x1, y1, x2, y2), label in zip(layout.boxes.tolist(), layout.labels.tolist(), strict=False)
            ]
            (out / "labels" / split / f"scene-{seed}.txt").write_text("\n".join(rows) + "\n")
    names = "".join(f"  {i - 1}: {name}\n" for i, name in enumerate(CLASSES) if i > 0)
    (out / "data.yaml").write_text(f"path: {out.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    return out / "data.yaml"


def shipped_yolo_checkpoint(name: str) -> Path:
    """Path of shipped YOLO checkpoint ``name`` (one of :data:`YOLO_MODELS`), existing or not."""
    if name not in YOLO_MODELS:
        raise ZooCheckpointError(f"unknown YOLO detector {name!r}; expected one of {', '.join(YOLO_MODELS)}")
    return Path(__file__).resolve().parent / "weights" / f"{name}.pt"


def yolo_schedule(name: str) -> dict[str, Any]:
    """``train_yolo`` keyword arguments of shipped YOLO ``name``: its world, and 16 epochs for the
    shortcut twin (after 8 its triangles were at AP 0.58, the tag barely learned)."""
    if name not in YOLO_MODELS:
        raise ValueError(f"unknown YOLO detector {name!r}; expected one of {', '.join(YOLO_MODELS)}")
    return {"variant": MODELS[name].world, "epochs": 16 if name.endswith("shortcut") else YOLO_DEFAULTS["epochs"]}


def regenerate_yolo_command(name: str, out: Path | str | None = None) -> str:
    """The command that retrains YOLO checkpoint ``name`` (into ``out``, default its shipped place)."""
    if name not in YOLO_MODELS:
        return f"python -m pytest_camaudit.zoo train --variant shapes-yolo --out {out}"
    return f"python -m pytest_camaudit.zoo train --variant {name} --out {out or shipped_yolo_checkpoint(name)}"


def _plain(value: Any) -> Any:
    """``value`` as nested dict / list / str / int / float / bool / None (``weights_only`` safe)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return value.item() if isinstance(value, (np.generic, torch.Tensor)) else str(value)


def train_yolo(
    out: Path | str,
    variant: str = "shapes",
    arch: str = YOLO_DEFAULTS["arch"],
    epochs: int = YOLO_DEFAULTS["epochs"],
    seed: int = YOLO_DEFAULTS["seed"],
    threads: int = YOLO_DEFAULTS["threads"],
    log: Callable[[str], None] = print,
    batch: int = YOLO_DEFAULTS["batch"],
    n_train: int = YOLO_DEFAULTS["n_train"],
    n_val: int = YOLO_DEFAULTS["n_val"],
    work_dir: Path | str | None = None,
    eval_scenes: int = 200,
) -> dict[str, Any]:
    """Train an Ultralytics YOLO from ``arch`` (a YAML shipped with ``ultralytics``) on world
    ``variant`` with ``DetectionTrainer`` — offline, deterministic, CPU, ``threads`` threads — and
    write ``best.pt``'s EMA weights (fp16) to ``out`` in the zoo's YOLO format, atomically.
    ``work_dir`` keeps the dataset and Ultralytics' run directory (default: a temporary one);
    ``eval_scenes`` held-out scenes give the mAP@0.5 stored in ``meta``.

    Returns:
        The ``meta`` dictionary stored in the checkpoint (schedule, held-out mAP, wall time…).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown world variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    ul = offline_ultralytics()
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.nn.tasks import load_checkpoint

    with contextlib.ExitStack() as stack:
        root = Path(work_dir) if work_dir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        data = write_yolo_dataset(root / "data", variant, n_train, n_val)
        log(f"wrote {n_train} + {n_val} {variant!r} scenes to {data.parent}")
        overrides = {
            **TRAIN_OVERRIDES, "model": arch, "data": str(data), "epochs": epochs, "batch": batch,
            "imgsz": DEFAULT_SIZE, "seed": seed, "deterministic": True, "workers": 0, "device": "cpu",
            "pretrained": False, "amp": False, "plots": False, "project": str(root / "runs"), "exist_ok": True,
        }
        start = time.perf_counter()
        with _training_patches(threads):
            trainer = DetectionTrainer(overrides=overrides)
            trainer.train()
        seconds = time.perf_counter() - start
        ema, _ = load_checkpoint(trainer.best if trainer.best.exists() else trainer.last)
    model = _fresh_model(ema.yaml, len(CLASSES) - 1)
    model.load_state_dict(ema.float().state_dict())
    result = evaluate_yolo(model.eval(), variant, eval_scenes)
    log(f"held-out mAP@0.5 on {result.n_images} {variant!r} scenes:\n{result.table()}")
    meta = {
        "variant": variant, "arch": arch, "epochs": epochs, "batch": batch, "imgsz": DEFAULT_SIZE, "seed": seed,
        "threads": threads, "train_seeds": [0, n_train], "val_seeds": [VAL_SEED_BASE, VAL_SEED_BASE + n_val],
        "hyperparameters": dict(TRAIN_OVERRIDES), "train_seconds": round(seconds, 1),
        "map50": round(result.map50, 4), "ap": result.ap, "recall": result.recall,
        "eval_seeds": [EVAL_SEED_BASE, EVAL_SEED_BASE + result.n_images], "ultralytics": ul.__version__,
        "torch": str(torch.__version__), "machine": platform.machine(), "license": LICENSE_NOTE,
    }
    save_yolo_checkpoint(model, out, Path(out).stem, DEFAULT_SIZE, meta)
    log(f"wrote {out} ({Path(out).stat().st_size / 1e6:.2f} MB) after {seconds / 60:.1f} min of training")
    return meta


def save_yolo_checkpoint(model: nn.Module, path: Path | str, name: str, imgsz: int, meta: dict[str, Any]) -> None:
    """Write ``model`` (a ``DetectionModel``) as a YOLO zoo checkpoint: floating tensors fp16,
    written to ``<path>.tmp`` and renamed over ``path``."""
    state = {k: (v.half() if v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    payload = {
        "format": YOLO_FORMAT, "name": name, "classes": list(CLASSES), "yaml": _plain(model.yaml),
        "imgsz": int(imgsz), "meta": _plain(meta), "state_dict": state,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _fresh_model(yaml: dict[str, Any], nc: int) -> Any:
    """An untrained ``DetectionModel(cfg=yaml, nc=nc)``, built quietly."""
    offline_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    return DetectionModel(cfg=dict(yaml), nc=nc, verbose=False)


def load_yolo_checkpoint(path: Path | str) -> tuple[nn.Module, list[str], dict[str, Any]]:
    """Load a YOLO zoo checkpoint by name (``"shapes-yolo"``) or path.

    Returns:
        ``(model, class_names, meta)``: an Ultralytics ``DetectionModel``, eval mode, fp32, CPU;
        the plugin's class names (``class_names[0] == "__background__"``); the stored ``meta``
        plus ``name``, ``path`` and ``imgsz``.

    Raises:
        ZooCheckpointError: the file is missing, corrupt, not a YOLO zoo checkpoint or does not fit
            its own YAML; the message names the file and the command that regenerates it.
    """
    shipped = str(path) in YOLO_MODELS
    file = shipped_yolo_checkpoint(str(path)) if shipped else Path(path)
    hint = f"regenerate it with `{regenerate_yolo_command(str(path) if shipped else file.stem, file)}`"
    payload = read_checkpoint(file, hint, fmt=YOLO_FORMAT, keys=("classes", "yaml", "imgsz", "state_dict"),
                              kind="YOLO checkpoint", expected="YOLO checkpoint")
    classes = [str(c) for c in payload["classes"]]
    try:
        model = _fresh_model(payload["yaml"], len(classes) - 1)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    except (RuntimeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ZooCheckpointError(f"YOLO checkpoint {file} does not fit its architecture: {exc}; {hint}") from exc
    model.names = dict(enumerate(classes[1:]))  # what Ultralytics' own tools read
    model.args = {"imgsz": int(payload["imgsz"])}  # as ultralytics' load_checkpoint attaches the training arguments
    meta = {"name": payload.get("name", file.stem), "path": str(file), "imgsz": int(payload["imgsz"])}
    return model.float().eval(), classes, {**meta, **dict(payload.get("meta", {}))}


EVAL_CONF = 0.001
"""The score threshold the YOLOs are evaluated at (ultralytics' ``val`` default): mAP needs the low-scoring boxes too."""


def yolo_evaluation_detector(model: nn.Module, imgsz: int = DEFAULT_SIZE, conf: float = EVAL_CONF,
                             class_names: list[str] | None = None) -> Detector:
    """``model`` as the :class:`~pytest_camaudit.detectors.base.Detector` its evaluation runs (the ultralytics
    family's letterbox at ``imgsz``, scores down to ``conf``), named by the zoo's classes."""
    from ..detectors.ultralytics.yolo import yolo_detector

    return yolo_detector(model, imgsz=imgsz, conf=conf, class_names=class_names or list(CLASSES))


def yolo_detections(model: nn.Module, images: list[np.ndarray], conf: float = EVAL_CONF, iou: float = 0.7, imgsz: ImageSize = 160,
                    max_det: int = 300, batch_size: int = 16) -> list[Detections]:
    """:func:`pytest_camaudit.detectors.ultralytics.runtime.yolo_detections` as the zoo's :class:`~.evaluate.Detections`
    (numpy; a :data:`~.evaluate.DetectFn` once ``model`` and the settings are bound)."""
    raw = raw_yolo_detections(model, images, conf, iou, imgsz, max_det, batch_size)
    return [Detections(r["boxes"].numpy(), r["labels"].numpy(), r["scores"].numpy()) for r in raw]


def evaluate_yolo(model: nn.Module, variant: str = "shapes", n_scenes: int = 200, conf: float = EVAL_CONF, imgsz: int = DEFAULT_SIZE) -> EvalResult:
    """``evaluate.evaluate_model`` (mAP@0.5, AP, recall at score 0.5; held-out seeds) of a YOLO, on
    its detector's detections of the rendered scenes (:func:`yolo_evaluation_detector`)."""
    return evaluate_model(yolo_evaluation_detector(model, imgsz, conf), variant, n_scenes)


def yolo_cue_dependence(model: nn.Module, n_scenes: int = 200, seed_base: int = EVAL_SEED_BASE, imgsz: int = DEFAULT_SIZE) -> CueDependence:
    """``evaluate.cue_dependence`` of a YOLO detector: the same held-out counterfactual renders
    (tag on the triangles / on nothing / on every object) and the same score-0.5 rules."""
    return cue_dependence(yolo_evaluation_detector(model, imgsz), n_scenes, seed_base)
