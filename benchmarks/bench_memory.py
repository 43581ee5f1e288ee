"""After 1000 CAM computations: no hooks left, and peak memory no higher than after warm-up.

    python benchmarks/bench_memory.py                  # 1000 maps, eigencam + eigengradcam
    python benchmarks/bench_memory.py --maps 3000 --method eigengradcam

The loop audits a stream of distinct shapes scenes (so the engine's image cache keeps evicting),
computes per-box EigenGradCAM maps (autograd graph, one backward each) and EigenCAM maps, runs a
context check now and then, and every 25 images makes the detector raise mid-forward. It
measures the process's resident memory (``VmRSS``) and its peak (``VmHWM``) from
``/proc/self/status`` after a warm-up of 10 % of the maps and at the end, and counts forward /
backward hooks on every module of the model. A leak of one image's activations per map would show
as tens of MB here; the figure to read is the peak's growth after warm-up, in percent.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from pathlib import Path

import numpy as np
import torch


def _status() -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` in MiB (Linux)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks)
               for m in model.modules())


class _Flaky(torch.nn.Module):
    """Wraps a detector; raises during forward when asked to (hooks must still be removed)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.transform, self.backbone = inner, inner.transform, inner.backbone
        self.fail = False

    def forward(self, images):  # noqa: ANN001, ANN201
        if self.fail:
            self.backbone(torch.stack(images))  # hooks fire, then the model fails
            raise RuntimeError("simulated failure in forward")
        return self.inner(images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--maps", type=int, default=1000, help="CAM computations (default 1000)")
    ap.add_argument("--method", choices=("both", "eigencam", "eigengradcam"), default="both")
    a = ap.parse_args()
    torch.manual_seed(0)
    from pytest_camaudit.detector import Detector
    from pytest_camaudit.engine import CamEngine
    from pytest_camaudit.errors import DetectorRuntimeError
    from pytest_camaudit.images import load_image
    from pytest_camaudit.zoo.model import load_zoo_detector
    from pytest_camaudit.zoo.world import make_scene

    model, classes, _ = load_zoo_detector("shapes")
    flaky = _Flaky(model)
    detector = Detector.wrap(flaky, classes, name="shapes", device="cpu")
    engine = CamEngine(detector, "eigengradcam" if a.method != "eigencam" else "eigencam")
    methods = ["eigengradcam", "eigencam"] if a.method == "both" else [a.method]
    warm_at = max(1, a.maps // 10)
    done, images, failures, t0 = 0, 0, 0, time.perf_counter()
    warm: dict[str, float] = {}
    while done < a.maps:
        img = load_image(np.ascontiguousarray(make_scene(70_000_000 + images).image))
        images += 1
        analysis = engine.analyze(img)
        for d in analysis.detections[:4]:
            for m in methods:
                if done < a.maps:
                    analysis.cam(m, d)
                    done += 1
        if images % 10 == 0 and analysis.detections:
            engine.without_context(analysis, analysis.detections[:2])
        if images % 25 == 0:
            flaky.fail = True
            try:
                engine.analyze(load_image(np.full((64, 64, 3), images % 255, np.uint8)))
            except DetectorRuntimeError:
                failures += 1
            finally:
                flaky.fail = False
        if not warm and done >= warm_at:
            gc.collect()
            warm = _status()
    del analysis
    gc.collect()
    end = _status()
    elapsed = time.perf_counter() - t0
    growth = 100.0 * (end["VmHWM"] - warm["VmHWM"]) / warm["VmHWM"]
    print(f"{done} CAM computations ({', '.join(methods)}) on {images} distinct images, {failures} forwards that raised, "
          f"{elapsed:.1f} s, torch threads {torch.get_num_threads()}, pid {os.getpid()}")
    print(f"hooks left on the model: {_hooks(detector.model)}; cached analyses: {len(engine._cache)} (cache size {engine.cache_size})")
    print(f"resident memory after warm-up ({warm_at} maps): {warm['VmRSS']:.0f} MiB (peak {warm['VmHWM']:.0f} MiB)")
    print(f"resident memory at the end:              {end['VmRSS']:.0f} MiB (peak {end['VmHWM']:.0f} MiB)")
    print(f"peak growth after warm-up: {growth:+.1f} %")


if __name__ == "__main__":
    main()
