"""Speed-up of an audit suite under pytest-xdist ``-n 2 --dist loadgroup``, measured side by side in one run.

Both suites mark each test with ``xdist_group(<image file>)``, so all tests of one image run on one
worker, where its analysis (one forward) is cached. With xdist's default ``--dist load`` the tests
of an image are spread over both workers and each re-analyses it: on 1824 tests that cost 15 s of
extra system CPU and the speed-up fell from 1.75× to 1.63×.

    python benchmarks/bench_xdist.py                    # the example suite (example_suite/)
    python benchmarks/bench_xdist.py --generated 80     # a generated suite of 80 scenes × 3 tests
    python benchmarks/bench_xdist.py --repeat 3 --report
    python benchmarks/bench_xdist.py --quick              # a generated suite of 6 scenes, one run each

Each configuration runs ``python -m pytest`` in a fresh subprocess (so interpreter start, torch
import and model load count, as they do in CI), alternating serial and ``-n 2`` runs ``--repeat``
times; the best time of each is compared. Torch is held to one thread per process
(``OMP_NUM_THREADS=1``) in both, so the serial run is not secretly using the second core. Prints
wall and CPU times, the ratio, and checks that both runs audited the same cases (from ``--camaudit-json``).
Numbers taken while other work shares the CPU are noisy; rerun on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import thread_env

ROOT = Path(__file__).resolve().parents[1]

GENERATED = '''
import json, pathlib, pytest
DOC = json.loads(pathlib.Path(__file__).with_name("data").joinpath("annotations.json").read_text())
NAMES = {c["id"]: c["name"] for c in DOC["categories"]}
FILES = {im["id"]: pathlib.Path(__file__).with_name("data") / "images" / im["file_name"] for im in DOC["images"]}
OBJECTS = [(FILES[a["image_id"]], NAMES[a["category_id"]], [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]])
           for a in DOC["annotations"]]

@pytest.fixture(scope="module", params=[pytest.param(o, marks=pytest.mark.xdist_group(o[0].name)) for o in OBJECTS],
                ids=lambda o: f"{o[0].name}-{o[1]}")
def obj(request):
    return request.param

def test_detected(camaudit, obj):
    camaudit.audit(obj[0]).assert_detected(obj[1], obj[2])

def test_mass(camaudit, obj):
    case = camaudit.audit(obj[0])
    case.assert_cam_mass(case.assert_detected(obj[1], obj[2]), at_least=0.3)

def test_context(camaudit, obj):
    case = camaudit.audit(obj[0])
    case.assert_survives_without_context(case.assert_detected(obj[1], obj[2]), max_drop=0.3)
'''


def _generated_suite(where: Path, scenes: int) -> Path:
    from pytest_camaudit.zoo.dataset import write_coco_dataset

    suite = where / "generated_suite"
    write_coco_dataset(suite / "data", list(range(60_000_000, 60_000_000 + scenes)), "shapes")
    (suite / "test_generated.py").write_text(GENERATED)
    (suite / "pytest.ini").write_text("[pytest]\ncamaudit_method = eigengradcam\n")
    return suite


def _run(suite: Path, out: Path, workers: int, report: bool) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds (all processes of the run) and the JSON summary of one run."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(suite), f"--camaudit-json={out}/s.json"]
    if report:
        args.append(f"--camaudit-report={out}/r.html")
    if workers:
        args += ["-n", str(workers), "--dist", "loadgroup"]  # one image's tests on one worker: its analysis is cached there
    env = thread_env(1)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=suite, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.exit(f"pytest exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, json.loads((out / "s.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", type=Path, default=ROOT / "example_suite", help="suite folder (default: example_suite/)")
    ap.add_argument("--generated", type=int, default=0, metavar="N", help="benchmark a generated suite of N scenes instead")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each configuration; the best counts (default 2)")
    ap.add_argument("--report", action="store_true", help="also write the HTML report (figures rendered in the workers)")
    ap.add_argument("--quick", action="store_true", help="a generated suite of 6 scenes, --repeat 1")
    a = ap.parse_args()
    if a.quick:
        a.generated, a.repeat = a.generated or 6, 1
    with tempfile.TemporaryDirectory(prefix="bench-xdist-") as tmp:
        suite = _generated_suite(Path(tmp), a.generated) if a.generated or not a.suite.is_dir() else a.suite.resolve()
        times: dict[int, list[float]] = {0: [], 2: []}
        cpus: dict[int, list[float]] = {0: [], 2: []}
        docs: dict[int, dict] = {}
        for r in range(a.repeat):
            for n in (0, 2):
                out = Path(tmp) / f"out-{n}-{r}"
                elapsed, cpu, docs[n] = _run(suite, out, n, a.report)
                times[n].append(elapsed)
                cpus[n].append(cpu)
                print(f"  run {r + 1}: {'-n 2' if n else 'serial'}  {elapsed:6.1f} s wall  {cpu:6.1f} s CPU", flush=True)
        same = [(c["nodeid"], c["name"], c["metrics"]) for c in docs[0]["cases"]] == [
            (c["nodeid"], c["name"], c["metrics"]) for c in docs[2]["cases"]
        ]
        t0, t2 = min(times[0]), min(times[2])
        print(f"suite: {suite}  ({docs[0]['totals']['tests']} tests, {docs[0]['totals']['audited_cases']} audited cases"
              f"{', HTML report' if a.report else ''})")
        print(f"serial {t0:.1f} s   -n 2 {t2:.1f} s   speed-up {t0 / t2:.2f}x  (best of {a.repeat}; cpus: {os.cpu_count()})")
        print(f"CPU seconds: serial {min(cpus[0]):.1f}, -n 2 {min(cpus[2]):.1f} (the difference is the second worker's "
              "start-up: interpreter, torch import, model load); wall times need two idle cores")
        print(f"load average now: {os.getloadavg()[0]:.2f}; same cases and metrics in both: {same}")


if __name__ == "__main__":
    main()
