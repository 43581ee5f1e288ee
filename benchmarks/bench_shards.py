"""Shards: 2 pytest-split shards in parallel plus the merge against one process; merge time and memory.

    python benchmarks/bench_shards.py                  # 2,000 cases; merges of 1,000 and 10,000 cases
    python benchmarks/bench_shards.py --cases 4000 --merge-cases 20000
    python benchmarks/bench_shards.py --quick           # 200 cases; merges of 200 and 2,000 cases

1. **Speed-up.** A generated suite of ``--cases`` data-driven cases (one ``shapes`` scene each, under
   a per-class mass gate) runs once as one process, then as two ``--splits 2 --group g`` processes
   started together, each writing its ``--camaudit-json``, followed by ``python -m pytest_camaudit
   merge``; then each shard once more on its own (the time two idle cores would take). Every
   process holds torch to one thread (``OMP_NUM_THREADS=1``), so one process uses one core and two
   shards use two. Interpreter start, torch import and model load count, as in CI.
   Prints both wall times and the ratio (target ≥ 1.7× on 2 cores), and checks that the merge
   reproduces the single run's totals and gate tables.
2. **Merge cost.** Synthetic run files (no detector: records with small distinct figure files, one
   in five cases failing, two gate rows per test) of ``--merge-cases`` cases and of a tenth of that,
   each split over two shards, merged with ``--report`` and ``--json`` in a fresh process. Prints the
   merge's wall time and peak resident memory for each; memory flat in the number of cases means
   the two peaks are close (the merge streams cases; only the figures on disk grow).

Figures taken while other work shares the CPU are noisy; rerun on an idle machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import thread_env

ROOT = Path(__file__).resolve().parents[1]

SUITE = """
import pytest
pytestmark = pytest.mark.camaudit_cases("data/annotations.json", gate_mass=(0.3, 0.5))

def test_scene(camaudit, camaudit_entry):
    camaudit_entry.check(camaudit_entry.audit(camaudit))
"""

MEASURE = """
import resource, sys
from pytest_camaudit.runs.cli import main
code = main(sys.argv[1:])
print("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def _suite(where: Path, cases: int) -> Path:
    from pytest_camaudit.zoo.dataset import write_coco_dataset

    suite = where / "suite"
    write_coco_dataset(suite / "data", list(range(70_000_000, 70_000_000 + cases)), "shapes")
    (suite / "test_generated.py").write_text(SUITE)
    (suite / "pytest.ini").write_text("[pytest]\ncamaudit_device = cpu\ncamaudit_method = eigencam\n")
    return suite


def _pytest(suite: Path, out: str, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", f"--camaudit-json={out}", *args]
    return subprocess.Popen(cmd, cwd=suite, env=thread_env(1), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate()
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(map(str, proc.args))} exited {proc.returncode}:\n{out[-3000:]}")
    return out


def speed_up(where: Path, cases: int) -> None:
    suite = _suite(where, cases)
    t0 = time.perf_counter()
    _finish(_pytest(suite, "single.json"))
    single = time.perf_counter() - t0
    t0 = time.perf_counter()
    procs = [_pytest(suite, f"shard-{g}.json", "--splits", "2", "--group", str(g)) for g in (1, 2)]
    for proc in procs:
        _finish(proc)
    shards = time.perf_counter() - t0
    alone = []  # each shard with the machine to itself: what two idle cores would give
    for g in (1, 2):
        t0 = time.perf_counter()
        _finish(_pytest(suite, f"alone-{g}.json", "--splits", "2", "--group", str(g)))
        alone.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    merge = subprocess.run([sys.executable, "-m", "pytest_camaudit", "merge", "shard-1.json", "shard-2.json", "--expect-shards=2",
                            "--json=merged.json", "--report=merged.html"], cwd=suite, capture_output=True, text=True)
    merged = time.perf_counter() - t0
    if merge.returncode not in (0, 1):
        sys.exit(f"merge exited {merge.returncode}:\n{merge.stderr[-3000:]}")
    one, many = (json.loads((suite / n).read_text()) for n in ("single.json", "merged.json"))
    same = one["totals"] == many["totals"] and one["tables"] == many["tables"] and one["cases"] == many["cases"]
    print(f"suite: {one['totals']['tests']} tests, {one['totals']['audited_cases']} audited cases "
          f"({sum(len(t['objects']) for t in one['tests'])} objects under a gate); merged equals single: {same}")
    total, ideal = shards + merged, max(alone) + merged
    print(f"one process {single:7.1f} s   2 shards in parallel {shards:7.1f} s + merge {merged:5.1f} s = {total:7.1f} s   "
          f"speed-up {single / total:.2f}x (target >= 1.7x on 2 cores)")
    print(f"each shard alone {alone[0]:.1f} s, {alone[1]:.1f} s: on two idle cores {ideal:.1f} s, speed-up {single / ideal:.2f}x "
          "(the parallel figure is lower when other work holds a core)", flush=True)


def _tiny_png(i: int, size: int) -> str:
    import cv2
    import numpy as np

    img = np.full((size, size, 3), i % 251, np.uint8)
    img[0, 0] = (i // 251 % 256, i // 64_256 % 256, 7)  # distinct content, distinct file name
    return base64.b64encode(cv2.imencode(".png", img)[1].tobytes()).decode()


def _report(i: int) -> object:
    from types import SimpleNamespace

    from pytest_camaudit.records import CaseRecord, CheckRecord, FigureRecord

    failed = i % 5 == 0
    label = ("circle", "square", "triangle", "star")[i % 4]
    box = [10.0, 10.0, 50.0, 50.0]
    mass = 0.2 + (i % 7) / 10
    checks = [CheckRecord("detected", True, f"{label} detected", label, box, 0, {"score": 0.97}, {"score": 0.5}),
              CheckRecord("cam_mass", not failed, f"expected mass >= 0.40, got {mass:.2f}", label, box, 0, {"mass": mass}, {"mass": 0.4})]
    figures = [FigureRecord(name, name, _tiny_png(2 * i + k, 48), width=48, height=48, thumb=_tiny_png(2 * i + k, 16),
                            thumb_width=16, thumb_height=16) for k, name in enumerate(("detections", "cam-eigencam-0"))] if failed else []
    case = CaseRecord(f"test_gen.py::test_case[{i:06d}]", f"scene-{i:06d}.png", f"data/scene-{i:06d}.png", "failed" if failed else "passed",
                      [160, 160], "shapes", "eigencam", [{"index": 0, "box": box, "label": label, "score": 0.97}],
                      [{"label": label, "box": box}], checks, figures)
    rows = [{"label": label, "detected": True, "mass": mass + k / 100, "score_threshold": 0.5, "gate_recall": 0.9, "gate_mass": [0.4, 0.5],
             "baseline": None, "key": case.source} for k in range(2)]
    return SimpleNamespace(when="call", passed=not failed, failed=failed, outcome=case.outcome, nodeid=case.nodeid, keywords={"camaudit": 1},
                           camaudit=[case.to_dict()], camaudit_objects=rows,
                           camaudit_run={"model": "shapes", "identity": "0" * 16, "method": "eigencam", "device": "cpu"})


def _synthetic_shard(path: Path, indices: range, group: int) -> None:
    from pytest_camaudit.plugin.collector import RunCollector
    from pytest_camaudit.plugin.integrations import write_json
    from pytest_camaudit.plugin.options import Settings
    from pytest_camaudit.report.store import FigureStore
    from pytest_camaudit.runs.writer import figures_dir

    collector = RunCollector(Settings(), store=FigureStore(figures_dir(path)),
                             selection={"args": ["."], "keyword": "", "markexpr": "", "shard": {"splits": 2, "group": group}})
    for i in indices:
        collector.add_report(_report(i))
    collector.collected = len(indices)
    collector.gates = {"state": "deferred", "ran": len(indices), "collected": len(indices), "interrupted": False, "failures": []}
    write_json(path, collector, "OK")


def merge_cost(where: Path, cases: int) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of merging ``cases`` synthetic cases from two shards."""
    folder = where / f"merge-{cases}"
    folder.mkdir()
    half = cases // 2
    for group, indices in ((1, range(half)), (2, range(half, cases))):
        _synthetic_shard(folder / f"shard-{group}.json", indices, group)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", MEASURE, "merge", "shard-1.json", "shard-2.json", "--report=merged.html",
                           "--json=merged.json"], cwd=folder, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        sys.exit(f"merge exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    rss = int(proc.stdout.rsplit("peak_rss_kib", 1)[1].split()[0]) / 1024
    return seconds, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000, help="cases of the generated suite (default 2000)")
    ap.add_argument("--merge-cases", type=int, default=10_000, help="cases of the largest synthetic merge (default 10000)")
    ap.add_argument("--quick", action="store_true", help="200 cases; merges of 200 and 2,000 cases")
    ap.add_argument("--skip-suite", action="store_true", help="only the merge cost")
    a = ap.parse_args()
    if a.quick:
        a.cases, a.merge_cases = 200, 2000
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        if not a.skip_suite:
            speed_up(Path(tmp), a.cases)
        small, large = max(2, a.merge_cases // 10), a.merge_cases
        results = {n: merge_cost(Path(tmp), n) for n in (small, large)}
        for n, (seconds, rss) in results.items():
            print(f"merge of {n:6d} cases (2 shards, report + JSON): {seconds:6.2f} s   peak RSS {rss:6.1f} MiB", flush=True)
        print(f"peak memory {large}/{small} cases: {results[large][1] / results[small][1]:.2f}x for {large // small}x the cases")


if __name__ == "__main__":
    main()
