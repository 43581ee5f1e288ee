"""The same dataset as a COCO file, an ultralytics dataset and a VOC root: the same tests, outcomes, gates and masses."""

from __future__ import annotations

import json

import pytest
from support.datasets import write_formats

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

SEEDS = list(range(20_000_000, 20_000_008))


def _run(pytester: pytest.Pytester, fmt: str, path: str) -> dict:
    out = pytester.path / f"{fmt}.json"
    result = pytester.runpytest("-p", "no:randomly", f"--camaudit-cases={path}", "--camaudit-min-mass=0.3", "--camaudit-gate-recall=0.9",
                                "--camaudit-class-thresholds=*: gate-mass=0.4:0.9; triangle: score=0.9", f"--camaudit-json={out}")
    doc = json.loads(out.read_text())
    tests = {t["nodeid"].split("::")[-1]: t for t in doc["tests"]}
    return {
        "exit": result.ret,
        "outcomes": {name: t["outcome"] for name, t in tests.items()},
        "masses": {(name, r["label"], tuple(r["box"])): r["mass"] for name, t in tests.items() for r in t["objects"]},
        "detected": {(name, r["label"], tuple(r["box"])): r["detected"] for name, t in tests.items() for r in t["objects"]},
        "tables": [(t["title"], t["columns"], t["rows"]) for t in doc["tables"]],
        "failures": doc["gates"]["failures"],
    }


def _same_table(a: list, b: list) -> bool:
    if len(a) != len(b):
        return False
    for (ta, ca, ra), (tb, cb, rb) in zip(a, b, strict=True):
        if ta != tb or ca != cb or len(ra) != len(rb):
            return False
        for x, y in zip((v for row in ra for v in row), (v for row in rb for v in row), strict=True):
            if isinstance(x, float) and isinstance(y, float) and abs(x - y) > 1e-3 or not isinstance(x, float) and x != y:
                return False
    return True


def test_the_three_formats_give_the_same_outcomes_gate_verdicts_and_masses(pytester, one_torch_thread):
    formats = write_formats(pytester.path, SEEDS, background=True)
    pytester.makeini("[pytest]\ncamaudit_device = cpu\n")
    runs = {fmt: _run(pytester, fmt, path) for fmt, path in formats.all().items()}
    coco = runs["coco"]
    assert len(coco["outcomes"]) == len(SEEDS) + 1 and coco["outcomes"]["image[background.png]"] == "passed"
    assert set(coco["outcomes"].values()) == {"passed", "failed"} and coco["exit"] == 1 and coco["failures"]  # something to agree on
    for fmt in ("yolo", "voc"):
        run = runs[fmt]
        assert run["exit"] == coco["exit"] and run["outcomes"] == coco["outcomes"], fmt
        assert run["detected"] == coco["detected"] and run["failures"] == coco["failures"], fmt
        assert run["masses"].keys() == coco["masses"].keys(), fmt
        worst = max(abs((run["masses"][k] or 0) - (coco["masses"][k] or 0)) for k in coco["masses"])
        assert worst <= 1e-3, f"{fmt}: masses differ by {worst}"
        assert _same_table(run["tables"], coco["tables"]), (fmt, run["tables"], coco["tables"])
