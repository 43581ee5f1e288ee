"""What the benchmark scripts share: models by one name, their standard images, timing, threads.

Import-light (torch and the package load inside the functions), so the scripts that only drive
pytest in subprocesses (``bench_xdist.py``, ``bench_report.py``) pay nothing for it. The scripts
run as ``python benchmarks/bench_<topic>.py``, which puts this folder on ``sys.path``::

    from _common import load, paired, set_threads

Models (:func:`load`), each with a standard test image (:func:`standard_image`):

* ``shapes``, ``shapes-shortcut`` — the shipped zoo detectors (or a zoo checkpoint ``.pt`` file);
  image: the 160×160 ``shapes`` scene :data:`SCENE_SEED`;
* ``r50`` — short for ``fasterrcnn_resnet50_fpn``;
* any torchvision detection builder (``fasterrcnn_mobilenet_v3_large_320_fpn``, ``retinanet_resnet50_fpn``…)
  — random weights from ``torch.manual_seed(seed)`` (default 0), nothing downloaded, builder keyword
  arguments passed through; image: 480×640 uniform noise (``numpy`` seed 0).

A random-weight model may score every box under its threshold: ``score_thresh=`` (or
:meth:`Bench.set_score_thresh`) lowers it (``roi_heads.score_thresh`` of a two-stage model, the
model's own ``score_thresh`` of RetinaNet / FCOS / SSD).

Timing: :func:`timeit`, :func:`median_time` (median of N after a warm-up), :func:`interleaved`
(several calls alternated rep by rep) and :func:`paired` (A/B alternated; medians and the quartiles of
the per-pair ratio B/A, robust to the drift of a shared machine, which moves both calls of a pair
alike). Threads: :func:`set_threads`, :func:`add_threads_arg`, :func:`thread_env` (for subprocesses).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from pytest_camaudit.detectors.base import Detector
    from pytest_camaudit.engine.engine import CamEngine
    from pytest_camaudit.engine.images import LoadedImage

SCENE_SEED = 20_000_003
"""The ``shapes`` scene every script uses as its one image (160×160, seven objects)."""

ALIASES = {"r50": "fasterrcnn_resnet50_fpn"}
"""Short names accepted by :func:`load`."""

NOISE_SHAPE = (480, 640)
"""``(H, W)`` of the standard image of a torchvision model."""


# -- images ---------------------------------------------------------------------------------------
def scene_image(seed: int = SCENE_SEED, variant: str = "shapes") -> np.ndarray:
    """``uint8 [160, 160, 3]``: ``shapes`` scene ``seed`` (of world ``variant``)."""
    from pytest_camaudit.zoo.world import make_scene

    return make_scene(seed, variant).image


def noise_image(height: int = NOISE_SHAPE[0], width: int = NOISE_SHAPE[1], seed: int = 0) -> np.ndarray:
    """``uint8 [height, width, 3]`` uniform noise from ``numpy.random.default_rng(seed)``."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def standard_image(name: str) -> np.ndarray:
    """The image a script uses for model ``name`` unless it says otherwise (see the module docstring)."""
    return scene_image() if is_zoo(name) else noise_image()


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """``uint8 [H, W, 3]`` → ``FloatTensor[3, H, W]`` in ``[0, 1]`` (what ``model([x])`` takes)."""
    import torch

    return torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)


# -- models ---------------------------------------------------------------------------------------
def is_zoo(name: str) -> bool:
    """Whether ``name`` is a shipped zoo detector or a zoo checkpoint file."""
    from pytest_camaudit.zoo.catalog import ZOO_MODELS

    return name in ZOO_MODELS or (Path(name).suffix == ".pt" and Path(name).is_file())


def builder_name(name: str) -> str:
    """``r50`` → ``fasterrcnn_resnet50_fpn``; other names unchanged."""
    return ALIASES.get(name, name)


@dataclass
class Bench:
    """A model ready to benchmark: the module, its :class:`Detector`, and the image to run it on.

    Attributes:
        name: the name it was loaded by, aliases resolved (``fasterrcnn_resnet50_fpn``, ``shapes``).
        model: the ``nn.Module`` in eval mode on CPU.
        detector: ``Detector.wrap`` of it.
        image: ``uint8 [H, W, 3]``, the standard image unless :func:`load` was given another.
        seed: the ``torch`` seed of random weights (``None`` for a zoo checkpoint).
    """

    name: str
    model: nn.Module
    detector: Detector
    image: np.ndarray
    seed: int | None = None
    tensor: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.tensor = to_tensor(self.image)

    @property
    def classes(self) -> list[str]:
        return self.detector.class_names

    @property
    def per_level_channels(self) -> int:
        """FPN channels per level (``backbone.out_channels``): 64 for ``shapes``, 256 for R50."""
        return int(getattr(self.model.backbone, "out_channels", 0))

    def describe(self) -> str:
        """``"shapes (160x160)"`` / ``"fasterrcnn_resnet50_fpn, random weights seed 0 (480x640)"``."""
        h, w = self.image.shape[:2]
        weights = "" if self.seed is None else f", random weights seed {self.seed}"
        return f"{self.name}{weights} ({h}x{w})"

    def loaded(self) -> LoadedImage:
        """The image as the engine takes it."""
        from pytest_camaudit.engine.images import load_image

        return load_image(self.image)

    def engine(self, method: str = "eigencam") -> CamEngine:
        """A fresh :class:`CamEngine` (empty cache) on the detector."""
        from pytest_camaudit.engine.engine import CamEngine

        return CamEngine(self.detector, method)

    def forward(self) -> Callable[[], object]:
        """A zero-argument call: one plain forward of the image (``model([x])`` under ``no_grad``)."""
        import torch

        model, x = self.model, self.tensor

        def plain() -> object:
            with torch.no_grad():
                return model([x])

        return plain

    def set_score_thresh(self, value: float) -> None:
        """Lower (or raise) the score threshold of the model's postprocessing."""
        set_score_thresh(self.model, value)

    def count_boxes(self) -> int:
        """Detections of the image at the current threshold (one plain forward)."""
        out: Any = self.forward()()
        return len(out[0]["boxes"])


def set_score_thresh(model: nn.Module, value: float) -> None:
    """``roi_heads.score_thresh`` (two-stage) or ``score_thresh`` (RetinaNet, FCOS, SSD) := ``value``."""
    owner = getattr(model, "roi_heads", model)
    if not hasattr(owner, "score_thresh"):
        raise ValueError(f"{type(model).__name__} has no score_thresh to set")
    owner.score_thresh = value


def load(name: str, *, seed: int = 0, score_thresh: float | None = None, image: np.ndarray | None = None,
         **builder_kwargs: Any) -> Bench:
    """Load model ``name`` (see the module docstring) on CPU in eval mode.

    Args:
        name: ``shapes``, ``shapes-shortcut``, a zoo checkpoint file, ``r50`` or a torchvision builder.
        seed: ``torch.manual_seed`` right before building random weights (torchvision models).
        score_thresh: if given, the postprocessing score threshold (so a random model returns boxes).
        image: the image to run on (default: :func:`standard_image` of ``name``).
        builder_kwargs: passed to the torchvision builder (``min_size``, ``rpn_post_nms_top_n_test``…).
    """
    import torch

    from pytest_camaudit.detectors.base import Detector

    meta: dict[str, Any]
    weights_seed: int | None = None
    if is_zoo(name):
        if builder_kwargs:
            raise ValueError(f"{name} is a zoo checkpoint; builder arguments {sorted(builder_kwargs)} do not apply")
        from pytest_camaudit.zoo.catalog import MODELS, checkpoint_architecture

        resolved = name
        if (MODELS[name].architecture if name in MODELS else checkpoint_architecture(name)) == "yolo":
            from pytest_camaudit.detectors.loading import load_detector

            detector = load_detector(name, device="cpu")
            return Bench(resolved, detector.model, detector, standard_image(name) if image is None else image, None)
        from pytest_camaudit.zoo.model import load_zoo_detector

        model, classes, meta = load_zoo_detector(name)
        class_names: list[str] | None = classes
    else:
        import torchvision.models.detection as tvd

        from pytest_camaudit.detectors.specs import TORCHVISION_BUILDERS

        resolved = builder_name(name)
        if resolved not in TORCHVISION_BUILDERS:
            raise ValueError(f"unknown model {name!r}: expected shapes, shapes-shortcut, a zoo .pt file, "
                             f"{', '.join(ALIASES)} or one of {', '.join(TORCHVISION_BUILDERS)}")
        torch.manual_seed(seed)
        model = getattr(tvd, resolved)(weights=None, weights_backbone=None, **builder_kwargs)
        class_names, meta, weights_seed = None, {"weights": f"random (torch seed {seed})"}, seed
    model.eval()
    if score_thresh is not None:
        set_score_thresh(model, score_thresh)
    detector = Detector.wrap(model, class_names, name=resolved, device="cpu", meta=meta)
    return Bench(resolved, model, detector, standard_image(name) if image is None else image, weights_seed)


# -- timing ---------------------------------------------------------------------------------------
def timeit(fn: Callable[[], object]) -> float:
    """Seconds of one call."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median_time(fn: Callable[[], object], n: int = 5, warmup: int = 1) -> float:
    """Median seconds of ``n`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    return statistics.median(timeit(fn) for _ in range(n))


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """``(q1, median, q3)``, interpolated within the values (``statistics.quantiles``' inclusive
    method: never outside them, even for two or three)."""
    if len(values) == 1:
        return (values[0],) * 3
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[1], q[2]


def spread(values: Sequence[float], fmt: str = ".3f") -> str:
    """``"median [q1-q3]"``."""
    q1, med, q3 = quartiles(values)
    return f"{med:{fmt}} [{q1:{fmt}}-{q3:{fmt}}]"


def noise(values: Sequence[float]) -> float:
    """Interquartile range over the median: how far repeated timings of one thing scatter."""
    q1, med, q3 = quartiles(values)
    return (q3 - q1) / med if med else float("nan")


def interleaved(fns: Sequence[Callable[[], object]], reps: int, warmup: int = 1, rotate: bool = False) -> list[list[float]]:
    """Seconds of each of ``fns`` over ``reps`` rounds (one call of each per round, after ``warmup``
    untimed rounds); with ``rotate`` the order turns by one each round, so none always runs first."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for r in range(reps):
        order = list(range(len(fns)))
        if rotate:
            order = order[r % len(fns):] + order[: r % len(fns)]
        for i in order:
            times[i].append(timeit(fns[i]))
    return times


@dataclass(frozen=True)
class Paired:
    """What :func:`paired` measured: median seconds of A and of B, the per-pair ratios B/A."""

    a: float
    b: float
    ratios: tuple[float, ...]

    @property
    def ratio(self) -> float:
        """Median of the per-pair ratios."""
        return quartiles(self.ratios)[1]

    @property
    def quartiles(self) -> tuple[float, float, float]:
        return quartiles(self.ratios)

    def spread(self, fmt: str = ".3f") -> str:
        """``"median [q1-q3]"`` of the per-pair ratios."""
        return spread(self.ratios, fmt)


def paired(a: Callable[[], object], b: Callable[[], object], reps: int, warmup: int = 1) -> Paired:
    """``a`` and ``b`` alternately ``reps`` times after ``warmup`` of each (a, b, a, b…)."""
    ta, tb = interleaved([a, b], reps, warmup)
    return Paired(statistics.median(ta), statistics.median(tb), tuple(y / x for x, y in zip(ta, tb, strict=True)))


# -- threads --------------------------------------------------------------------------------------
def set_threads(n: int | None) -> int:
    """``torch.set_num_threads(n)`` (``None``: leave torch's default); the number in effect."""
    import torch

    if n is not None:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def add_threads_arg(parser: argparse.ArgumentParser, default: int | None = 1) -> None:
    """``--threads N`` (torch intra-op threads of this process; default ``default``, ``None``: torch's)."""
    shown = "torch's default" if default is None else default
    parser.add_argument("--threads", type=int, default=default, help=f"torch threads (default: {shown})")


def thread_env(threads: int | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a subprocess with ``threads`` OpenMP / MKL threads (``None``: ``OMP_NUM_THREADS``
    of ``base`` if set, else 1)."""
    env = dict(os.environ if base is None else base)
    n = str(threads) if threads is not None else env.get("OMP_NUM_THREADS", "1")
    env.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n)
    return env
