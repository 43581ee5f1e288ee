"""Peak memory of a real audit run: pytest over a generated data-driven suite, RSS sampled from /proc.

This is the path a team's first real run takes: ``pytest --camaudit-cases=annotations.json`` over
many distinct images, one test per image, per-test auditors and records, the report on. The
benchmark writes the suites, runs each in a fresh ``python -m pytest`` subprocess, samples the
subprocess's resident memory (``VmRSS`` in ``/proc/<pid>/status``) every 0.2 s, and prints per run:

* the peak RSS;
* the RSS after 20 % of the tests (warm-up: model loaded, the engine's LRU of 8 image analyses
  full) and the highest RSS after any later test, and their ratio as the *growth after warm-up*
  (per-test RSS comes from the ``_rss_probe`` plugin loaded into the run);
* the wall time.

Workloads (``--workloads``, default all):

* ``shapes-eigencam`` / ``shapes-eigengradcam``: ``--cases`` (default 1,000) distinct scenes of the
  ``shapes-shortcut`` world (``python -m pytest_camaudit.zoo make-dataset``), on the embedded twin,
  report on (every failing case draws its figures);
* ``r50-eigencam``: ``--r50-images`` (default 100) distinct 480×640 images (shapes scenes scaled up)
  with COCO-named boxes, on ``fasterrcnn_resnet50_fpn`` with random weights — nothing is detected,
  so every case fails and its figures are drawn.

``--compare-trim`` runs each workload first with the plugin's management of glibc's heap turned off
(``CAMAUDIT_MALLOC_TRIM=0``, :mod:`pytest_camaudit.plugin.heap`: glibc's own thresholds and no
``malloc_trim`` after a test), then on.

``--against SRC`` runs the same workloads with another source tree of the package first (e.g. a
``git archive`` of an earlier commit) and prints both side by side with the ratio.

    python benchmarks/bench_memory.py                                   # ~5 min on 2 cores
    python benchmarks/bench_memory.py --cases 300 --workloads shapes-eigengradcam --against /tmp/main-7a74148
    python benchmarks/bench_memory.py --workloads r50-eigencam --compare-trim   # malloc_trim off, then on
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORKLOADS = ("shapes-eigencam", "shapes-eigengradcam", "r50-eigencam")


@dataclass
class Run:
    label: str
    peak_mb: float
    warm_mb: float
    late_peak_mb: float
    seconds: float
    exit: int

    @property
    def growth(self) -> float:
        return self.late_peak_mb / self.warm_mb - 1.0 if self.warm_mb else float("nan")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _measure(cmd: list[str], env: dict[str, str], cwd: Path, label: str) -> Run:
    samples: list[float] = []
    log = cwd / "rss-per-test.txt"
    env = {**env, "CAMAUDIT_RSS_LOG": str(log),
           "PYTHONPATH": os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(HERE)) if p)}
    t = time.perf_counter()
    proc = subprocess.Popen([*cmd, "-p", "_rss_probe"], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else b""))
    reader.start()
    while proc.poll() is None:
        rss = _rss_mb(proc.pid)
        if rss is not None:
            samples.append(rss)
        time.sleep(0.2)
    reader.join()
    seconds = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        print(b"".join(out).decode(errors="replace")[-3000:], file=sys.stderr)
    per_test = [float(line.split()[1]) for line in log.read_text().splitlines()] if log.is_file() else [0.0]
    warm_at = len(per_test) // 5
    return Run(label, max(samples or [0.0]), per_test[warm_at], max(per_test[warm_at:]), seconds, proc.returncode)


def _shapes_suite(folder: Path, cases: int) -> Path:
    subprocess.run([sys.executable, "-m", "pytest_camaudit.zoo", "make-dataset", "--variant", "shapes-shortcut", "--count", str(cases),
                    "--first-seed", "30000000", "--out", str(folder)], check=True, stdout=subprocess.DEVNULL)
    return folder / "annotations.json"


def _r50_suite(folder: Path, images: int) -> Path:
    """Shapes scenes scaled to 480×640, their objects named as COCO classes the R50 knows."""
    import cv2

    from pytest_camaudit.zoo.world import make_layout, render

    names = {1: "sports ball", 2: "tv", 3: "kite", 4: "frisbee"}
    (folder / "images").mkdir(parents=True, exist_ok=True)
    doc: dict[str, list[dict[str, object]]] = {"images": [], "annotations": [],
                                               "categories": [{"id": k, "name": v} for k, v in names.items()]}
    for i in range(images):
        lay = make_layout(31_000_000 + i)
        big = cv2.resize(render(lay), (640, 480), interpolation=cv2.INTER_LINEAR)
        name = f"r50-{i}.png"
        cv2.imwrite(str(folder / "images" / name), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
        doc["images"].append({"id": i + 1, "file_name": name, "width": 640, "height": 480})
        for obj in lay.objects:
            x1, y1, x2, y2 = obj.box
            sx, sy = 640 / lay.size, 480 / lay.size
            doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": i + 1, "category_id": obj.label,
                                       "bbox": [x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy], "iscrowd": 0})
    path = folder / "annotations.json"
    path.write_text(json.dumps(doc))
    return path


def _command(workload: str, ann: Path, out: Path, src: Path | None) -> list[str]:
    model, method = {"shapes-eigencam": ("shapes-shortcut", "eigencam"), "shapes-eigengradcam": ("shapes-shortcut", "eigengradcam"),
                     "r50-eigencam": ("fasterrcnn_resnet50_fpn", "eigencam")}[workload]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--no-header", "-o", "addopts=", f"--rootdir={out}",
           f"--camaudit-cases={ann}", f"--camaudit-model={model}", f"--camaudit-method={method}",
           f"--camaudit-report={out / 'report.html'}", "--camaudit-device=cpu"]
    if src is not None:  # another tree's entry module (pytest_camaudit.plugin in trees before plugin/hooks.py)
        entry = "pytest_camaudit.plugin.hooks" if (src / "pytest_camaudit" / "plugin" / "hooks.py").exists() else "pytest_camaudit.plugin"
        cmd[3:3] = ["-p", "no:camaudit", "-p", entry]
    return cmd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000, help="shapes scenes per shapes workload")
    ap.add_argument("--r50-images", type=int, default=100)
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--against", type=Path, default=None, help="source tree of an earlier version to run first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compare-trim", action="store_true",
                    help="run each workload with the plugin's heap management off (CAMAUDIT_MALLOC_TRIM=0) first, then on")
    args = ap.parse_args()
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    with tempfile.TemporaryDirectory(prefix="camaudit-mem-") as tmp:
        base = Path(tmp)
        anns = {}
        if any(w.startswith("shapes") for w in workloads):
            anns["shapes"] = _shapes_suite(base / "shapes", args.cases)
        if "r50-eigencam" in workloads:
            anns["r50"] = _r50_suite(base / "r50", args.r50_images)
        rows = []
        for w in workloads:
            ann = anns[w.split("-")[0]]
            runs = []
            variants: list[tuple[str, Path | None, dict[str, str]]] = [("before", args.against, {})] if args.against else []
            if args.compare_trim:
                variants.append(("no-trim", None, {"CAMAUDIT_MALLOC_TRIM": "0"}))
            variants.append(("now", None, {}))
            for label, src, extra in variants:
                env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), **extra}
                if src is not None:
                    env["PYTHONPATH"] = str(src)
                out = base / f"out-{w}-{label}"
                out.mkdir()
                runs.append(_measure(_command(w, ann, out, src), env, out, label))
            rows.append((w, runs))
    print(f"{'workload':22} {'run':7} {'peak RSS':>10} {'RSS at 20%':>11} {'max after':>10} {'growth':>8} {'wall':>8}  exit")
    for w, runs in rows:
        for r in runs:
            print(f"{w:22} {r.label:7} {r.peak_mb:8.0f} MB {r.warm_mb:8.0f} MB {r.late_peak_mb:7.0f} MB {r.growth:7.1%} {r.seconds:7.1f}s  {r.exit}")
        for r in runs[:-1]:
            now = runs[-1]
            print(f"{'':22} {'now/' + r.label:14} {now.peak_mb / r.peak_mb:5.2f}x{'':33} {now.seconds / r.seconds:6.2f}x")


if __name__ == "__main__":
    main()
