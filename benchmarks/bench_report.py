"""Report size and browser cost for 100 failing cases and for 500 cases.

    python benchmarks/bench_report.py                 # 100 failing + 500 (report-all) cases
    python benchmarks/bench_report.py --sizes 100 --side 640
    python benchmarks/bench_report.py --quick         # 10 failing cases at 320 px

Writes a suite of N parametrized tests, each auditing a distinct shapes scene scaled to
``--side`` px (so the figures are that big: detections, a CAM overlay, the image without context)
and failing on purpose, runs it with ``--camaudit-report`` in a subprocess, and prints the HTML
size, the side-folder size and the total. With Chromium on the machine it also opens each report
headless (``tests/support/chromium.py``) and prints the time to the load event, the time to scroll to the
last card and see its pictures, and the page's JS heap and DOM node count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import thread_env

ROOT = Path(__file__).resolve().parents[1]

SUITE = '''
import cv2, pytest
from pytest_camaudit.zoo.world import CLASSES, make_scene
SIDE = {side}

@pytest.mark.parametrize("seed", range(50_000_000, 50_000_000 + {n}))
def test_scene(camaudit, seed):
    scene = make_scene(seed)
    big = cv2.resize(scene.image, (SIDE, SIDE), interpolation=cv2.INTER_LINEAR)
    case = camaudit.audit(big, name=f"scene-{{seed}}.png")
    k = SIDE / scene.image.shape[1]
    label, box = CLASSES[int(scene.labels[0])], [k * float(v) for v in scene.boxes[0]]
    det = case.assert_detected(label, box, score_threshold=0.05, iou_threshold=0.1)
    case.assert_survives_without_context(det, max_drop=1.0)
    case.assert_cam_mass(det, at_least=0.999)
'''


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _browse(report: Path) -> str:
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    from chromium import Browser, find_chromium

    exe = find_chromium()
    if exe is None:
        return "browser: no Chromium found (apt-get install -y chromium)"
    with Browser(exe) as b:
        t0 = time.perf_counter()
        b.open(report)
        loaded = time.perf_counter() - t0
        n = b.evaluate("document.querySelectorAll('article.case').length")
        t1 = time.perf_counter()
        pics = b.evaluate(
            "(async () => { const c = document.querySelector('#case-" + str(n) + "'); c.scrollIntoView();"
            " const imgs = [...c.querySelectorAll('img')];"
            " for (let i = 0; i < 400 && !imgs.every(im => im.complete); i++) await new Promise(r => setTimeout(r, 25));"
            " return imgs.filter(im => im.naturalWidth > 0).length + '/' + imgs.length; })()"
        )
        scrolled = time.perf_counter() - t1
        b.call("Performance.enable", session=True)
        m = {x["name"]: x["value"] for x in b.call("Performance.getMetrics", session=True)["metrics"]}
    return (f"browser: {n} cards, load event {loaded:.2f} s, scroll to the last card + its pictures ({pics}) {scrolled:.2f} s, "
            f"JS heap {m['JSHeapUsedSize'] / 1e6:.1f} MB, DOM nodes {int(m['Nodes'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 500], help="numbers of cases (default 100 500)")
    ap.add_argument("--side", type=int, default=480, help="image side in px (figures are 320..640; default 480)")
    ap.add_argument("--quick", action="store_true", help="10 cases at 320 px")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the pytest run (default: $OMP_NUM_THREADS, else 1)")
    a = ap.parse_args()
    if a.quick:
        a.sizes, a.side = [10], 320
    env = thread_env(a.threads)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        for n in a.sizes:
            d = Path(tmp) / f"s{n}"
            d.mkdir()
            (d / "test_scale.py").write_text(SUITE.format(n=n, side=a.side))
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--camaudit-report=report.html",
                                   "--camaudit-json=s.json"], cwd=d, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if proc.returncode not in (0, 1):
                sys.exit(proc.stdout[-3000:] + proc.stderr[-3000:])
            totals = json.loads((d / "s.json").read_text())["totals"]
            html, side = _size(d / "report.html"), _size(d / "report_files")
            files = len(list((d / "report_files").iterdir()))
            print(f"{n} cases ({totals['failed_cases']} failing) at {a.side} px: HTML {html / 1e6:.2f} MB + report_files/ "
                  f"{side / 1e6:.2f} MB in {files} files = {(html + side) / 1e6:.2f} MB ({(html + side) / 2**20:.2f} MiB); "
                  f"suite ran {elapsed:.0f} s")
            print("  " + _browse(d / "report.html"), flush=True)


if __name__ == "__main__":
    main()
