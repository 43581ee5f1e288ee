"""Discovery on the zoo: what ``--camaudit-discover`` flags, where it says the evidence lies, and what it costs.

    python benchmarks/bench_discovery.py                 # 200 scenes per world, every zoo model
    python benchmarks/bench_discovery.py --scenes 60 --models shapes shapes-shortcut
    python benchmarks/bench_discovery.py --quick         # 40 scenes, the Faster R-CNNs

For each zoo model, on ``--scenes`` generated scenes of the shortcut world (seeds from 60,000,000,
away from the example suite's) and of the clean world (the clean models only):

1. ``pytest --camaudit-cases=… --camaudit-discover`` in a fresh process: the flagged classes (the
   twins must flag ``triangle`` and nothing else, the clean models nothing), and for every flagged
   group the share of its members whose tag (``cue_boxes`` of make-dataset) is at the corner the
   report names (target ≥ 80 %);
2. the same run without ``--camaudit-discover``: the wall time both ways, side by side;
3. in process, the cost of one object's profile in forward-equivalents: the median time of the
   batched re-scores of its 10 regions over the median time of one plain detection of its image.

``--shards`` also splits the first twin's run in two pytest-split shards merged with ``python -m
pytest_camaudit merge`` and runs it under ``-n 2``: the same flags as one process.
Every process runs torch on ``--threads`` threads (default 2). Figures taken while other work shares
the CPU are noisy; rerun on an idle machine.
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

FIRST_SEED = 60_000_000
TWINS = {"shapes-shortcut": "triangle", "shapes-yolo-shortcut": "triangle"}


def _dataset(where: Path, scenes: int, variant: str) -> Path:
    from pytest_camaudit.zoo.dataset import write_coco_dataset

    return write_coco_dataset(where / variant, list(range(FIRST_SEED, FIRST_SEED + scenes)), variant)


def _pytest(annotations: Path, model: str, threads: int, *extra: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    cmd = [sys.executable, "-m", "pytest", f"--camaudit-cases={annotations}", f"--camaudit-model={model}", "-q", "-p", "no:cacheprovider",
           "-p", "no:randomly", "--camaudit-device=cpu", *extra]
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=annotations.parent, capture_output=True, text=True, env=thread_env(threads), timeout=7200)
    return time.perf_counter() - t, done


def _corner(box: list[float], cues: list[list[float]]) -> str:
    x1, y1, x2, y2 = box
    corners = {"top-left": (x1, y1), "top-right": (x2, y1), "bottom-left": (x1, y2), "bottom-right": (x2, y2)}
    return min((abs((c[0] + c[2]) / 2 - cx) + abs((c[1] + c[3]) / 2 - cy), name) for c in cues for name, (cx, cy) in corners.items())[1]


def _groups(run: dict, annotations: Path) -> list[str]:
    """Per flagged group: where it is said to lie, its size, and how many members have their tag there."""
    cues: dict[str, list[list[float]]] = {}
    for image in json.loads(annotations.read_text())["images"]:
        cues[image["file_name"]] = image.get("cue_boxes", [])
    where = {e["key"]: (c["name"], e["box"]) for c in run["cases"] for e in c["evidence"]}
    out = []
    for c in run["discovery"]["classes"]:
        for g in (g for g in c["groups"] if g["status"] == "flagged"):
            hits = sum(bool(cues[where[k][0]]) and _corner(where[k][1], cues[where[k][0]]) == g["region"] for k in g["members"])
            out.append(f"{c['label']} {g['region']}: {g['size']} objects ({g['share']:.0%}), loss {g['loss']:.2f}, tag there {hits}/{g['size']} "
                       f"({hits / g['size']:.0%})")
    return out


def _profile_cost(model: str, threads: int, scenes: int) -> float:
    """Median forward-equivalents of one object's profile (its 10 regions re-scored, batched) on the model's world."""
    import statistics

    import torch

    from pytest_camaudit.audit.auditor import Auditor
    from pytest_camaudit.audit.evidence import profile
    from pytest_camaudit.detectors.loading import load_detector
    from pytest_camaudit.engine.engine import CamEngine
    from pytest_camaudit.zoo.world import make_scene

    torch.set_num_threads(threads)
    engine = CamEngine(load_detector(model, device="cpu"), "eigencam", cache_size=1)
    ratios = []
    for seed in range(FIRST_SEED, FIRST_SEED + min(scenes, 20)):
        image = make_scene(seed, "shapes-shortcut").image
        case = Auditor(engine).audit(image, name=str(seed))
        for det in case.above(0.5)[:3]:
            t = time.perf_counter()
            engine.detect([image])
            plain = time.perf_counter() - t
            t = time.perf_counter()
            profile(case.analysis, det, engine)
            ratios.append((time.perf_counter() - t) / plain)
        engine.clear()
    return statistics.median(ratios)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--models", nargs="+", default=["shapes-shortcut", "shapes", "shapes-yolo-shortcut", "shapes-yolo"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shards", action="store_true", help="also check shards + merge and -n 2 on the first twin")
    parser.add_argument("--quick", action="store_true", help="40 scenes, the Faster R-CNNs")
    args = parser.parse_args()
    if args.quick:
        args.scenes, args.models = 40, ["shapes-shortcut", "shapes"]
    with tempfile.TemporaryDirectory() as tmp:
        worlds = {v: _dataset(Path(tmp), args.scenes, v) for v in ("shapes-shortcut", "shapes")}
        print(f"{args.scenes} scenes per world, {args.threads} torch threads per process")
        for model in args.models:
            for world in ("shapes-shortcut", *(() if model in TWINS else ("shapes",))):
                _one(model, world, worlds[world], args.threads, Path(tmp))
            print(f"  {model}: one object's profile costs {_profile_cost(model, args.threads, args.scenes):.2f} forward-equivalents "
                  f"(10 images, batched; median over up to 60 objects)")
        if args.shards:
            _shards(next(m for m in args.models if m in TWINS), worlds["shapes-shortcut"], args.threads, Path(tmp))
    return 0


def _one(model: str, world: str, annotations: Path, threads: int, tmp: Path) -> None:
    out = tmp / f"{model}-{world}.json"
    with_d, done = _pytest(annotations, model, threads, "--camaudit-discover", f"--camaudit-json={out}")
    without, plain = _pytest(annotations, model, threads)
    run = json.loads(out.read_text())
    line = run["discovery"]["line"] if run.get("discovery") else f"(no discovery: exit {done.returncode}: {done.stdout[-300:]})"
    expected = TWINS.get(model) if world == "shapes-shortcut" else None
    ok = run["discovery"]["flagged"] == ([expected] if expected else []) if run.get("discovery") else False
    objects = sum(c["objects"] for c in run["discovery"]["classes"]) if run.get("discovery") else 0
    print(f"{model} on the {world} world: {line}  [{'as expected' if ok else 'NOT as expected'}]")
    print(f"  {objects} profiled objects; wall time {without:.1f} s without --camaudit-discover, {with_d:.1f} s with "
          f"({with_d / without:.2f}x; exit {plain.returncode} / {done.returncode})")
    for g in _groups(run, annotations):
        print(f"  flagged group {g}")
    for c in run["discovery"]["classes"] if run.get("discovery") else []:
        print(f"    {c['label']:9s} {c['status']:15s} objects {c['objects']:4d} reliant {c['reliant']:.0%} groups "
              + ", ".join(f"{g['region']}:{g['size']}:{g['status']}" for g in c["groups"][:5]))


def _shards(model: str, annotations: Path, threads: int, tmp: Path) -> None:
    shards = []
    for group in (1, 2):
        out = tmp / f"shard-{group}.json"
        _, done = _pytest(annotations, model, threads, "--camaudit-discover", f"--camaudit-json={out}", "--splits", "2", "--group", str(group))
        assert "camaudit discovery: deferred" in done.stdout, done.stdout[-2000:]
        shards.append(str(out))
    merged = subprocess.run([sys.executable, "-m", "pytest_camaudit", "merge", *shards, f"--json={tmp / 'merged.json'}"], capture_output=True,
                            text=True, timeout=600)
    one = json.loads((tmp / f"{model}-shapes-shortcut.json").read_text())["discovery"]
    many = json.loads((tmp / "merged.json").read_text())["discovery"]
    _, xdist = _pytest(annotations, model, max(1, threads // 2), "--camaudit-discover", f"--camaudit-json={tmp / 'xdist.json'}", "-n", "2")
    two = json.loads((tmp / "xdist.json").read_text())["discovery"]
    print(f"{model}: 2 shards merged -> {many['line']} (exit {merged.returncode}); -n 2 -> {two['line']} (exit {xdist.returncode}); "
          f"one process -> {one['line']}; same flags: {many['flagged'] == one['flagged'] == two['flagged']}")


if __name__ == "__main__":
    sys.exit(main())
