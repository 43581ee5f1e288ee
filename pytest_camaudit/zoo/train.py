"""Train a shapes detector from scratch on freshly generated scenes (CPU is enough).

Every iteration draws ``batch_size`` new scenes from seeds ``iteration * batch_size + j`` (all
below :data:`~pytest_camaudit.zoo.evaluate.EVAL_SEED_BASE`), so there is no fixed training set to
overfit and a run is reproducible from its seed and thread count.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .model import DEFAULT_CONFIG, build_shapes_detector, save_checkpoint
from .world import VARIANTS, make_layout, render_variant

TRAIN_DEFAULTS: dict[str, Any] = {
    "iterations": 1800,
    "batch_size": 8,
    "lr": 1.5e-3,
    "weight_decay": 1e-4,
    "warmup": 100,
    "clip": 10.0,
    "seed": 0,
}


def _batch(variant: str, iteration: int, batch_size: int) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    images, targets = [], []
    for j in range(batch_size):
        layout = make_layout(iteration * batch_size + j)
        img = render_variant(layout, variant)
        images.append(torch.from_numpy(img).permute(2, 0, 1).float().div(255))
        targets.append({"boxes": torch.from_numpy(layout.boxes), "labels": torch.from_numpy(layout.labels)})
    return images, targets


def lr_at(iteration: int, iterations: int, lr: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` iterations, then cosine decay to 2 % of ``lr``."""
    if iteration < warmup:
        return lr * (iteration + 1) / warmup
    t = (iteration - warmup) / max(1, iterations - warmup)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def _progress(variant: str, done: int, iterations: int, smooth: float, losses: dict[str, torch.Tensor], elapsed: float) -> str:
    eta = elapsed / done * (iterations - done)
    parts = " ".join(f"{k.replace('loss_', '')}={float(v.detach()):.3f}" for k, v in losses.items())
    return (f"[{variant}] it {done:>5}/{iterations}  loss {smooth:.3f} ({parts})  "
            f"{elapsed / done:.2f} s/it  elapsed {elapsed / 60:.1f} min  ETA {eta / 60:.1f} min")


def train(
    variant: str,
    out: Path,
    iterations: int = TRAIN_DEFAULTS["iterations"],
    batch_size: int = TRAIN_DEFAULTS["batch_size"],
    lr: float = TRAIN_DEFAULTS["lr"],
    seed: int = TRAIN_DEFAULTS["seed"],
    log: Callable[[str], None] = print,
    log_every: int = 25,
) -> dict[str, Any]:
    """Train a detector on world ``variant`` and write the checkpoint to ``out``.

    Returns:
        The ``meta`` dictionary stored in the checkpoint (variant, iterations, seconds, final loss…).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown world variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = build_shapes_detector()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=TRAIN_DEFAULTS["weight_decay"])
    log(f"training {variant!r}: {n_params / 1e6:.2f} M parameters, {iterations} iterations x {batch_size} scenes, "
        f"{torch.get_num_threads()} threads")
    start = time.perf_counter()
    smooth: float | None = None
    for it in range(iterations):
        for group in opt.param_groups:
            group["lr"] = lr_at(it, iterations, lr, TRAIN_DEFAULTS["warmup"])
        images, targets = _batch(variant, it, batch_size)
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, TRAIN_DEFAULTS["clip"])
        opt.step()
        value = float(loss.detach())
        smooth = value if smooth is None else 0.95 * smooth + 0.05 * value
        if (it + 1) % log_every == 0 or it + 1 == iterations:
            log(_progress(variant, it + 1, iterations, smooth, losses, time.perf_counter() - start))
    model.eval()
    meta = {
        "variant": variant,
        "iterations": iterations,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "train_seconds": round(time.perf_counter() - start, 1),
        "final_loss": round(float(smooth or 0.0), 4),
        "threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "machine": platform.machine(),
    }
    save_checkpoint(model, Path(out), variant, DEFAULT_CONFIG, meta)
    log(f"wrote {out} ({Path(out).stat().st_size / 1e6:.2f} MB) after {(time.perf_counter() - start) / 60:.1f} min")
    return meta
