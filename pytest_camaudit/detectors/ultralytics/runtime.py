"""The ultralytics runtime: YOLO inference exactly as its predictor does it, without ``predict()``, offline.

Shared by the ultralytics families (:mod:`.yolo`) and, through them, the zoo's YOLO detectors
(training, evaluation), so the letterbox and the post-processing live in one place:

* :func:`offline_ultralytics` — the one way ``ultralytics`` is imported: offline, and with the
  process-wide settings its import changes put back (:func:`import_ultralytics`: the same, with
  the install hint when it is missing);
* :func:`input_shape`, :func:`letterbox_geometry`, :func:`letterbox` — the predictor's letterbox
  (``LetterBox(imgsz, auto=True, stride)``: scaled to fit, centred, padded with grey 114 up to a
  multiple of the stride) and where it puts the image (:class:`~pytest_camaudit.datatypes.Geometry`);
* :func:`yolo_detections` — letterbox, the ``nn.Module`` itself, ``non_max_suppression``,
  ``scale_boxes``: the predictor's boxes.

``predict()`` is never called: it resets torch's thread count for the whole process
(``select_device``), runs under inference mode and caches the head's anchors as inference tensors
that a later autograd forward at the same size cannot use.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from ...datatypes import Geometry
from ...errors import ModelLoadError
from ..family import RawOutput

ImageSize = int | tuple[int, int]
"""An ultralytics ``imgsz``: one side, or ``(height, width)``."""

_IMPORT_ENV = ("OMP_NUM_THREADS", "NUMEXPR_MAX_THREADS", "TF_CPP_MIN_LOG_LEVEL", "TORCH_CPP_LOG_LEVEL", "KINETO_LOG_LEVEL")
"""Environment variables importing ``ultralytics`` sets (put back by :func:`offline_ultralytics`)."""
_TORCH_PRINT = ("precision", "threshold", "edgeitems", "linewidth", "sci_mode")


def offline_ultralytics() -> Any:
    """Import ``ultralytics`` offline, and undo what its import does to the rest of the process.

    Before the first import: ``YOLO_OFFLINE=1`` (``ultralytics.utils.ONLINE`` false: no DNS probe,
    no analytics, Sentry or pip update check), ``YOLO_AUTOINSTALL=0`` and a temporary
    ``YOLO_CONFIG_DIR`` (the user's Ultralytics settings stay out; removed at exit), each only when
    not already set. The import sets ``OMP_NUM_THREADS=1`` and four other variables,
    ``cv2.setNumThreads(0)``, numpy's and torch's print options, and it replaces ``PIL.Image.open``
(which then tries to install ``pi-heif`` on every unreadable file) and ``torch.save``: all are put back, and torch's
    thread count too, so importing it changes nothing for the code around it; its INFO messages
    during the import (the new settings file) are dropped. A later call returns the module already
    imported (also one the user imported themselves).

    Returns:
        The ``ultralytics`` module (with ``ultralytics.utils`` imported).

    Raises:
        ImportError: ultralytics is not installed.
    """
    if "ultralytics.utils" in sys.modules:
        return sys.modules["ultralytics"]
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    if "YOLO_CONFIG_DIR" not in os.environ:
        os.environ["YOLO_CONFIG_DIR"] = config_dir = tempfile.mkdtemp(prefix="camaudit-yolo-config-")
        atexit.register(shutil.rmtree, config_dir, ignore_errors=True)
    env = {k: os.environ.get(k) for k in _IMPORT_ENV}
    printing = torch._tensor_str.PRINT_OPTS
    threads, cv_threads, np_print = torch.get_num_threads(), cv2.getNumThreads(), np.get_printoptions()
    torch_print = {k: getattr(printing, k) for k in _TORCH_PRINT}
    quiet = logging.getLogger("ultralytics")  # its import announces the new settings file at INFO
    from PIL import Image

    patched = (Image.open, torch.save, cv2.imread, cv2.imwrite, cv2.imshow)  # its import replaces these

    def warnings_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING

    quiet.addFilter(warnings_only)
    try:
        import ultralytics
        import ultralytics.utils  # where the process-wide settings are made
    finally:
        quiet.removeFilter(warnings_only)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        Image.open, torch.save, cv2.imread, cv2.imwrite, cv2.imshow = patched
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
        np.set_printoptions(**np_print)
        torch.set_printoptions(**torch_print)
    return ultralytics


INSTALL_HINT = "install the extra: pip install 'pytest-camaudit[yolo]' (ultralytics, AGPL-3.0)"


def import_ultralytics() -> Any:
    """``ultralytics``, imported offline (:func:`offline_ultralytics`).

    Raises:
        ModelLoadError: ultralytics is not installed; the message says how to install it.
    """
    try:
        return offline_ultralytics()
    except ImportError as exc:
        raise ModelLoadError(f"YOLO detectors need ultralytics, which cannot be imported ({exc}); {INSTALL_HINT}") from exc


def is_ultralytics(obj: Any, *names: str) -> bool:
    """Whether ``obj``'s class, or a base, is an ultralytics class named one of ``names`` (no import)."""
    return any(c.__name__ in names and c.__module__.startswith("ultralytics.") for c in type(obj).__mro__)


def trained_imgsz(model: Any, network: nn.Module, default: int) -> int | tuple[int, int]:
    """The size ``model`` was made for: a ``YOLO`` / ``RTDETR`` object's overrides, else the network's training
    ``imgsz``, else ``default``."""
    for args in (getattr(model, "overrides", None) if is_ultralytics(model, "Model") else None, getattr(network, "args", None)):
        size = args.get("imgsz") if isinstance(args, dict) else getattr(args, "imgsz", None)
        if size:
            return int(size) if isinstance(size, (int, float)) else (int(size[0]), int(size[-1]))
    return default


def model_stride(model: nn.Module) -> int:
    """The letterbox stride of a ``DetectionModel``: its largest stride, at least 32 (``AutoBackend``'s rule)."""
    return max(int(torch.as_tensor(getattr(model, "stride", 32)).max()), 32)


def input_shape(imgsz: ImageSize | Sequence[int], stride: int) -> tuple[int, int]:
    """``(height, width)`` the letterbox fits images into: ``imgsz`` rounded up to multiples of
    ``stride``, as the predictor's ``check_imgsz`` does (one side means a square)."""
    sides = [int(imgsz)] * 2 if isinstance(imgsz, (int, float)) else [int(v) for v in imgsz]
    h, w = (sides * 2)[:2] if len(sides) == 1 else sides[:2]
    return math.ceil(h / stride) * stride, math.ceil(w / stride) * stride


def letterbox_geometry(original: tuple[int, int], imgsz: ImageSize, stride: int) -> Geometry:
    """Where the predictor's letterbox puts an image of ``original = (H0, W0)`` pixels.

    ``LetterBox``'s arithmetic: ``r = min(h / H0, w / W0)`` for ``(h, w) =``
    :func:`input_shape`, resized to ``(round(H0 r), round(W0 r))`` (each at least 1), padding up
    to multiples of ``stride`` split in two with the top / left getting ``round(pad / 2 - 0.1)``.
    E.g. 720×1280 at 640 → 360×640 in a 384×640 canvas, ``offset (12, 0)``.
    """
    (h0, w0), (h, w) = original, input_shape(imgsz, stride)
    r = min(h / h0, w / w0)
    new_h, new_w = max(round(h0 * r), 1), max(round(w0 * r), 1)
    dh, dw = (h - new_h) % stride, (w - new_w) % stride
    return Geometry(original, (new_h, new_w), (new_h + dh, new_w + dw), (float(round(dh / 2 - 0.1)), float(round(dw / 2 - 0.1))))


def letterbox(image: np.ndarray, imgsz: ImageSize = 640, stride: int = 32) -> np.ndarray:
    """Ultralytics' predictor letterbox (``LetterBox(imgsz, auto=True, stride)``): ``uint8 [H, W, C]``
    to ``uint8 [Hp, Wp, C]`` (see :func:`letterbox_geometry`; bilinear resize, grey 114 padding)."""
    offline_ultralytics()
    from ultralytics.data.augment import LetterBox

    return np.asarray(LetterBox(input_shape(imgsz, stride), auto=True, stride=stride)(image=image))


def _postprocess() -> tuple[Any, Any]:
    """``(non_max_suppression, scale_boxes)`` of the installed ultralytics (8.3 kept NMS in ``ops``)."""
    offline_ultralytics()
    import importlib

    from ultralytics.utils import ops

    try:
        nms: Any = importlib.import_module("ultralytics.utils.nms")
    except ImportError:  # older 8.3 releases kept it in ops
        nms = ops
    return nms.non_max_suppression, ops.scale_boxes


def yolo_detections(
    model: nn.Module,
    images: Sequence[np.ndarray],
    conf: float = 0.001,
    iou: float = 0.7,
    imgsz: ImageSize = 160,
    max_det: int = 300,
    batch_size: int = 16,
) -> list[RawOutput]:
    """Detections of an Ultralytics ``DetectionModel`` exactly as its predictor makes them.

    Each ``uint8 [H, W, 3]`` RGB image is letterboxed (:func:`letterbox`), scaled to [0, 1] and
    fed to the ``nn.Module`` itself under ``torch.no_grad``. Consecutive images of one shape share
    a batch (up to ``batch_size``). The raw output goes through Ultralytics' ``non_max_suppression``
    with the predictor's settings (class-aware, one label per box, at most ``max_det``; an
    end-to-end head, ``model.end2end``, is only thresholded) and ``scale_boxes`` back to the image.

    Returns:
        Per image, the torchvision convention (:data:`~pytest_camaudit.detectors.family.RawOutput`)
        sorted by score: ``boxes FloatTensor[N, 4]`` xyxy in the image's pixels (clipped to it),
        ``labels Int64Tensor[N]`` the model's class **+ 1** (the plugin's indices, 0 being
        ``__background__``), ``scores FloatTensor[N]``; on the CPU.
    """
    non_max_suppression, scale_boxes = _postprocess()
    stride = model_stride(model)
    device = next(model.parameters()).device
    end2end = bool(getattr(model, "end2end", False))
    out: dict[int, RawOutput] = {}
    runs = [list(run) for _, run in itertools.groupby(range(len(images)), key=lambda i: images[i].shape)]
    for group in (run[k : k + batch_size] for run in runs for k in range(0, len(run), batch_size)):
        boxed = np.stack([letterbox(images[i], imgsz, stride) for i in group])
        x = torch.from_numpy(boxed).to(device).permute(0, 3, 1, 2).contiguous().float().div(255)
        with torch.no_grad():
            kept = non_max_suppression(model(x), conf, iou, None, False, max_det=max_det, end2end=end2end)
        for i, det in zip(group, kept, strict=True):
            det = det.detach().float().cpu()
            boxes = torch.as_tensor(scale_boxes((x.shape[2], x.shape[3]), det[:, :4].clone(), images[i].shape))
            out[i] = {"boxes": boxes.float(), "labels": det[:, 5].round().long() + 1, "scores": det[:, 4].float()}
    return [out[i] for i in range(len(images))]
