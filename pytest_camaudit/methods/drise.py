"""D-RISE (Petsiuk et al., CVPR 2021): black-box saliency for one detection from random masks.

Each of ``N`` seeded masks ``M_i`` (RISE masks: a ``cells × cells`` grid of keep / drop draws with
probability ``p``, bilinearly upsampled and shifted by a random sub-cell offset) blends the image
toward the detector's neutral fill colour, ``x_i = fill + M_i · (x - fill)``; the detector runs on
the masked images in batches (no hooks, no gradients, any architecture). A mask's weight for a
target detection ``t`` is its best similarity with the detections ``d`` on the masked image:

    ``w_i = max_d IoU(t, d) · agreement(t, d)``

The paper's agreement is the cosine between the two detections' class-probability vectors.
torchvision detectors return only the top label and its score, so the agreement used here is
``score(d) · [label(d) == label(t)]``: the probability the masked image still gives the target's
class, and zero for another class (the cosine of two one-hot vectors, scaled by confidence).

The saliency is ``Σ_i (w_i - mean(w)) M_i / N`` — the paper's weighted sum of masks minus its
uniform part ``mean(w) Σ_i M_i`` (a constant floor plus mask-sampling noise that says nothing
about the detection), ReLU, max 1.

One set of masked forwards serves every detection of the image: the per-mask detections are
kept with the analysis and each detection's map is a re-weighting of the same masks.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from ..datatypes import CamMap, Detection
from .maps import normalise

if TYPE_CHECKING:
    from ..engine.analysis import ImageAnalysis


@dataclass(frozen=True)
class DriseConfig:
    """D-RISE settings.

    Attributes:
        masks: number of random masks ``N`` (the paper uses 5000 on 608-pixel images; 1000 is
            enough for objects of ≥ 1/10 of the image side, more for small ones).
        cells: mask grid cells per side (one cell ≈ the smallest object you care about).
        keep: probability ``p`` that a cell is kept.
        batch_size: masked images per detector call (``None``: the engine's, ``--camaudit-batch-size``).
        seed: seed of the masks; the same seed gives the same map.
        progress: print a progress bar on stderr; ``None``: when stderr is a terminal and
            ``masks >= 500``.
    """

    masks: int = 1000
    cells: int = 16
    keep: float = 0.5
    batch_size: int | None = None
    seed: int = 0
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.masks < 1:
            raise ValueError(f"`masks` must be at least 1, got {self.masks}")
        if self.cells < 1:
            raise ValueError(f"`cells` must be at least 1, got {self.cells}")
        if not 0.0 < self.keep < 1.0:
            raise ValueError(f"`keep` must be strictly between 0 and 1, got {self.keep}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"`batch_size` must be at least 1, got {self.batch_size}")


class MaskSet:
    """``N`` RISE masks for an ``H × W`` image, drawn from ``seed``, produced in batches.

    Only the small grids and offsets are stored; :meth:`batch` upsamples on demand, so memory is
    ``O(batch · H · W)`` whatever ``N``.
    """

    def __init__(self, n: int, height: int, width: int, cells: int, keep: float, seed: int) -> None:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        self.n, self.height, self.width = n, height, width
        self.cell_h, self.cell_w = math.ceil(height / cells), math.ceil(width / cells)
        self.grids = (torch.rand(n, 1, cells, cells, generator=gen) < keep).float()
        self.dy = torch.randint(0, self.cell_h, (n,), generator=gen)
        self.dx = torch.randint(0, self.cell_w, (n,), generator=gen)

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Masks ``start:stop`` as ``FloatTensor[B, H, W]`` in ``[0, 1]``."""
        cells = self.grids.shape[-1]
        up = F.interpolate(
            self.grids[start:stop], size=((cells + 1) * self.cell_h, (cells + 1) * self.cell_w), mode="bilinear", align_corners=False
        )[:, 0]
        out = torch.empty(stop - start, self.height, self.width)
        for j, i in enumerate(range(start, stop)):
            y, x = int(self.dy[i]), int(self.dx[i])
            out[j] = up[j, y : y + self.height, x : x + self.width]
        return out


@dataclass
class DriseRun:
    """The masked forwards of one image: per mask, the detector's boxes / labels / scores."""

    config: DriseConfig
    masks: MaskSet
    outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc="D-RISE masks", unit="mask", disable=not enabled, file=sys.stderr, leave=False)


def drise_run(analysis: ImageAnalysis, config: DriseConfig) -> DriseRun:
    """Run (or fetch from the analysis' memo) the masked forwards of ``analysis``'s image for ``config``."""
    # shared: a few hundred KB of boxes per 1000 masks, and 1000 forwards to redo for the next test of the image
    return analysis.remember(("drise", config), lambda: _masked_forwards(analysis, config), shared=True)


def _masked_forwards(analysis: ImageAnalysis, config: DriseConfig) -> DriseRun:
    detector = analysis.detector
    device = detector.device
    pixels = torch.from_numpy(analysis.image.pixels.copy()).permute(2, 0, 1).float().div_(255.0).to(device)
    fill = torch.as_tensor(detector.fill_colour(), dtype=torch.float32, device=device).div(255.0)[:, None, None]
    h, w = pixels.shape[-2:]
    masks = MaskSet(config.masks, h, w, config.cells, config.keep, config.seed)
    show = config.progress if config.progress is not None else (config.masks >= 500 and sys.stderr.isatty())
    batch = config.batch_size or analysis.batch_for(h, w)
    outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    with _progress(config.masks, bool(show)) as bar, torch.no_grad():
        for start in range(0, config.masks, batch):
            stop = min(config.masks, start + batch)
            m = masks.batch(start, stop).to(device)
            images = fill + m[:, None] * (pixels - fill)
            for out in detector.run(list(images)):
                outputs.append((out["boxes"].float().cpu(), out["labels"].cpu(), out["scores"].float().cpu()))
            bar.update(stop - start)
    return DriseRun(config, masks, outputs)


def mask_weights(run: DriseRun, detection: Detection) -> torch.Tensor:
    """``w_i = max_d IoU(target, d) · score(d) · [same label]`` for every mask: ``FloatTensor[N]``."""
    target = torch.tensor([detection.box], dtype=torch.float32)
    weights = torch.zeros(len(run.outputs))
    for i, (boxes, labels, scores) in enumerate(run.outputs):
        same = labels == detection.label
        if bool(same.any()):
            weights[i] = (box_iou(target, boxes[same])[0] * scores[same]).max()
    return weights


def drise_cam(analysis: ImageAnalysis, detection: Detection, config: DriseConfig | None = None) -> CamMap:
    """The D-RISE map of ``detection`` on ``[H0, W0]`` original pixels (see the module docstring)."""
    config = config or DriseConfig()
    run = drise_run(analysis, config)
    weights = mask_weights(run, detection)
    centred = weights - weights.mean()
    saliency = torch.zeros(run.masks.height, run.masks.width)
    chunk = 64  # masks upsampled at a time: memory O(chunk · H · W)
    for start in range(0, config.masks, chunk):
        stop = min(config.masks, start + chunk)
        saliency += torch.einsum("b,bhw->hw", centred[start:stop], run.masks.batch(start, stop))
    saliency /= config.masks
    degenerate = float(centred.abs().max()) == 0.0
    return CamMap(normalise(saliency), "drise", detection.index, degenerate)
