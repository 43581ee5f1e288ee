"""A whole audit run against bare detection, as whole processes: what a team's CI job pays.

The benchmark writes a data-driven suite (``--cases`` scenes of the ``shapes`` world, seeds from
31,000,000, away from the example suite's 20,000,000 range) and times, each as a fresh process:

* **bare**: a script that loads the same detector (``load_detector("shapes")``), reads every image
  of the suite with PIL and runs ``Detector.detect`` on it (:data:`BARE`; it also times its forwards
  and reads per scene, a few microseconds in all, which ``--segments`` prints);
* **eigencam**: ``python -m pytest --camaudit-cases=annotations.json --camaudit-method=eigencam``;
* **eigengradcam**: the same with ``--camaudit-method=eigengradcam``.

The pytest runs write no report and no JSON and keep torch's default threads (``--threads N`` sets
``OMP_NUM_THREADS`` for every process alike). Every process finds its modules compiled, as on a
machine that installed the package: bytecode goes to a ``PYTHONPYCACHEPREFIX`` folder of the run
(``PYTHONDONTWRITEBYTECODE`` is cleared), filled by an untimed warm-up round. Each object's CAM mass is measured whether or not a
threshold is set (``--camaudit-min-mass`` 0, the default: measured only), so every detected object
gets its map — with EigenGradCAM one backward and one principal component per object. Rounds
alternate bare / eigencam / eigengradcam (``--pairs`` rounds, default 3); the printed ratios are
the medians of the per-round ratios pytest / bare, so a shared machine's drift moves both sides of
a ratio alike. The CPU seconds of each process (user + system, all its threads) are printed beside
the wall times: on a machine shared with other work they scatter less.

``--compare-freeze`` adds, per round, both pytest runs with the plugin's garbage-collector freeze
turned off (``CAMAUDIT_GC_FREEZE=0``, :mod:`pytest_camaudit.plugin.heap`), printed as their own
columns.

``--compare-heap`` adds, per round, both pytest runs with the plugin's management of glibc's heap
turned off (``CAMAUDIT_MALLOC_TRIM=0``: glibc's moving ``mmap`` / trim thresholds, no trims), and the
bare script with the plugin's fixed thresholds (``GLIBC_TUNABLES``, ``bare-heap``): how much of a
run's time is the detector's forward faulting in pages that the default thresholds gave back.

``--against SRC`` runs every pytest and bare process a second time per round with another source
tree of the package first on ``PYTHONPATH`` (e.g. a ``git archive`` of an earlier commit), and
prints both side by side.

    python benchmarks/bench_whole_run.py                   # 300 scenes, 3 rounds: ~4 min on 2 cores
    python benchmarks/bench_whole_run.py --quick           # 60 scenes, 3 rounds
    python benchmarks/bench_whole_run.py --against /tmp/camaudit-before
    python benchmarks/bench_whole_run.py --compare-freeze  # also with CAMAUDIT_GC_FREEZE=0
    python benchmarks/bench_whole_run.py --compare-heap    # also with CAMAUDIT_MALLOC_TRIM=0, and bare-heap
    python benchmarks/bench_whole_run.py --quick --keep /tmp/suite   # the suite stays, for a profile
    python benchmarks/bench_whole_run.py --segments        # also: where each scene's time goes

``--segments`` runs, after the rounds, the bare loop and one EigenCAM pytest run with timers around
their pieces (``benchmarks/_segments.py``) and prints each piece's milliseconds per scene.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST_SEED = 31_000_000
METHODS = ("eigencam", "eigengradcam")

BARE = """
import json, sys, time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pytest_camaudit.detectors import family
from pytest_camaudit.detectors.loading import load_detector

annotations = Path(sys.argv[1])
detector = load_detector("shapes", device="cpu")
totals = {"model": 0.0, "read": 0.0}  # for --segments: the model's forward and the image's read
run = family.Family.run

def timed(self, *args):
    t = time.perf_counter()
    try:
        return run(self, *args)
    finally:
        totals["model"] += time.perf_counter() - t

family.Family.run = timed
found, ends = 0, []
for n, image in enumerate(json.loads(annotations.read_text())["images"]):
    if n == 1:
        totals = dict.fromkeys(totals, 0.0)
    t = time.perf_counter()
    with Image.open(annotations.parent / "images" / image["file_name"]) as file:
        pixels = np.array(file.convert("RGB"))
    x = torch.from_numpy(pixels).permute(2, 0, 1).float().div(255)
    totals["read"] += time.perf_counter() - t
    found += len(detector.detect([x])[0])
    ends.append(time.perf_counter())
print(f"bare: {found} detections")
if len(ends) > 1:
    n = len(ends) - 1
    print(f"bare per scene ({n} scenes, from the second): {(ends[-1] - ends[0]) / n * 1000:.2f} ms; "
          f"model {totals['model'] / n * 1000:.2f} ms, read {totals['read'] / n * 1000:.2f} ms")
"""


def _suite(folder: Path, scenes: int) -> Path:
    from pytest_camaudit.zoo.dataset import write_coco_dataset

    return write_coco_dataset(folder, list(range(FIRST_SEED, FIRST_SEED + scenes)), "shapes")


NO_FREEZE = "-nofreeze"
"""Suffix of a kind run with ``CAMAUDIT_GC_FREEZE=0``."""

GLIBC_HEAP = "-glibcheap"
"""Suffix of a kind run with ``CAMAUDIT_MALLOC_TRIM=0`` (glibc's own heap thresholds)."""

BARE_HEAP = "bare-heap"
"""The bare script with the plugin's heap thresholds (:mod:`pytest_camaudit.plugin.heap`)."""


def _heap_tunables() -> str:
    from pytest_camaudit.plugin.heap import MMAP_THRESHOLD, TRIM_THRESHOLD

    return f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"


def _command(kind: str, annotations: Path) -> list[str]:
    if kind in ("bare", BARE_HEAP):
        return [sys.executable, "-c", BARE, str(annotations)]
    kind = kind.removesuffix(NO_FREEZE).removesuffix(GLIBC_HEAP)
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-o", "addopts=",
            f"--rootdir={annotations.parent}", f"--camaudit-cases={annotations}", "--camaudit-model=shapes",
            f"--camaudit-method={kind}", "--camaudit-device=cpu"]


def _time(cmd: list[str], env: dict[str, str], cwd: Path, kind: str = "") -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one process."""
    if kind.endswith(NO_FREEZE):
        env = {**env, "CAMAUDIT_GC_FREEZE": "0"}
    if kind.endswith(GLIBC_HEAP):
        env = {**env, "CAMAUDIT_MALLOC_TRIM": "0"}
    if kind == BARE_HEAP:
        env = {**env, "GLIBC_TUNABLES": _heap_tunables()}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # 1: some scenes fail their checks, as a real suite's do
        raise RuntimeError(f"{' '.join(cmd[:6])}… exited {proc.returncode}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _env(threads: int | None, src: Path | None, pycache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    if threads is not None:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH")) if p)
    return env


def _segments(annotations: Path, env: dict[str, str], cwd: Path) -> None:
    """One bare loop and one EigenCAM pytest run with timers around their pieces (:mod:`_segments`)."""
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)}
    bare = subprocess.run(_command("bare", annotations), env=env, cwd=cwd, capture_output=True, text=True)
    audit = subprocess.run([*_command("eigencam", annotations), "-p", "_segments"], env=env, cwd=cwd, capture_output=True, text=True)
    timed = bare.stdout[bare.stdout.find("bare per scene"):].strip()
    print("\n" + timed + "\n" + audit.stderr[audit.stderr.find("segments per scene"):].strip(), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=300, help="shapes scenes in the suite (default 300)")
    ap.add_argument("--pairs", type=int, default=3, help="rounds of bare / eigencam / eigengradcam (default 3)")
    ap.add_argument("--quick", action="store_true", help="60 scenes")
    ap.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of every process (default: torch's default)")
    ap.add_argument("--against", type=Path, default=None, help="source tree of an earlier version, run beside this one")
    ap.add_argument("--compare-freeze", action="store_true", help="also run both methods with CAMAUDIT_GC_FREEZE=0")
    ap.add_argument("--compare-heap", action="store_true",
                    help="also run both methods with CAMAUDIT_MALLOC_TRIM=0, and the bare script with the plugin's heap thresholds")
    ap.add_argument("--keep", type=Path, default=None, help="write the suite into this folder and keep it (to profile a run on it)")
    ap.add_argument("--segments", action="store_true", help="then time the pieces of one bare and one EigenCAM run per scene")
    args = ap.parse_args()
    scenes = 60 if args.quick else args.cases
    trees: list[tuple[str, Path | None]] = ([("before", args.against.resolve())] if args.against else []) + [("now", None)]
    methods: tuple[str, ...] = METHODS
    if args.compare_freeze:
        methods += tuple(m + NO_FREEZE for m in METHODS)
    if args.compare_heap:
        methods += (*(m + GLIBC_HEAP for m in METHODS), BARE_HEAP)
    kinds = ("bare", *methods)
    with tempfile.TemporaryDirectory(prefix="camaudit-whole-") as tmp:
        annotations = _suite(args.keep.resolve() if args.keep else Path(tmp) / "suite", scenes)
        if args.keep:
            print(f"suite kept in {annotations.parent}", flush=True)
        envs = {label: _env(args.threads, src, Path(tmp) / f"pycache-{label}") for label, src in trees}
        for label, _ in trees:  # warm-up: bytecode compiled, files in the page cache
            for kind in kinds:
                _time(_command(kind, annotations), envs[label], Path(tmp), kind)
        wall: dict[tuple[str, str], list[float]] = {(t, k): [] for t, _ in trees for k in kinds}
        cpu: dict[tuple[str, str], list[float]] = {(t, k): [] for t, _ in trees for k in kinds}
        for r in range(args.pairs):
            for label, _ in trees:
                for kind in kinds:
                    w, c = _time(_command(kind, annotations), envs[label], Path(tmp), kind)
                    wall[label, kind].append(w)
                    cpu[label, kind].append(c)
            print(f"round {r + 1}/{args.pairs}: " + "  ".join(f"{t}/{k} {v[-1]:.1f}s" for (t, k), v in wall.items()), flush=True)
        if args.segments:
            _segments(annotations, envs["now"], Path(tmp))
    print(f"\n{scenes} shapes scenes (seeds {FIRST_SEED}…), {args.pairs} rounds, threads {args.threads or 'default'}; "
          "median seconds, the median of the per-round ratios pytest / bare, and the extra ms per scene")
    for name, times in (("wall", wall), ("CPU", cpu)):
        print(f"\n{name:4} {'tree':7} {'bare':>8}" + "".join(f" {m:>21} {'ratio':>7} {'ms/scene':>9}" for m in methods))
        for label, _ in trees:
            bare = times[label, "bare"]
            row = f"{'':4} {label:7} {statistics.median(bare):7.2f}s"
            for m in methods:
                ratios = [p / b for p, b in zip(times[label, m], bare, strict=True)]
                extra_ms = statistics.median(p - b for p, b in zip(times[label, m], bare, strict=True)) / scenes * 1000
                row += f" {statistics.median(times[label, m]):20.2f}s {statistics.median(ratios):6.3f}x {extra_ms:9.2f}"
            print(row)

if __name__ == "__main__":
    main()
