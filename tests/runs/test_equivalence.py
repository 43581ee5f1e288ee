"""A sharded run equals a single run: the example suite split three ways with pytest-split, then merged.

On the clean ``shapes`` detector and on its ``shapes-shortcut`` twin held to the baseline with
``--camaudit-discover``: the same verdict, gate, baseline, atlas-drift and discovery tables,
per-class table, failing cards, and the same run file apart from timings (and the merged file's
list of shards).
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_camaudit.runs.layout import TIMING_KEYS

pytestmark = pytest.mark.slow  # end-to-end: eight runs of the example suite

ROOT = Path(__file__).resolve().parents[2]


def _pytest(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "pytest", "example_suite", "-p", "no:cacheprovider", "-p", "no:randomly", "-q",
                           f"--camaudit-json={out}", f"--camaudit-report={out.with_suffix('.html')}", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)


def _comparable(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc["run"] = {k: v for k, v in doc["run"].items() if k not in (*TIMING_KEYS, "shards")}
    return doc


def _cards(page: Path) -> list[tuple[str, str]]:
    """The report's cards as ``(outcome, node id)``, in page order."""
    text = page.read_text()
    found = re.findall(r'<article class="case (\w+)"[^>]*>.*?<div class="nodeid">([^<]+)</div>', text, flags=re.S)
    return [(outcome, html.unescape(nodeid).split(" · ")[0]) for outcome, nodeid in found]


@pytest.mark.parametrize("model", [[], ["--camaudit-model=shapes-shortcut", "--camaudit-baseline=example_suite/baselines/shapes",
                                         "--camaudit-discover"]], ids=["clean", "twin-with-baseline-and-discovery"])
def test_three_pytest_split_shards_merge_into_the_single_run(tmp_path, model):
    single = _pytest(tmp_path / "single.json", *model)
    shards, outputs = [], []
    for group in (1, 2, 3):
        shard = _pytest(tmp_path / f"shard-{group}.json", *model, "--splits", "3", "--group", str(group))
        assert shard.returncode in (0, 1), shard.stdout[-3000:] + shard.stderr[-3000:]
        shards.append(tmp_path / f"shard-{group}.json")
        outputs.append(shard.stdout)
    assert any("camaudit gates: deferred to the merge" in out for out in outputs)  # the shard(s) with the data-driven cases
    if "--camaudit-discover" in model:
        assert all("camaudit discovery: deferred to the merge" in out for out in outputs)
    assert not any("FAILED gate" in out for out in outputs)
    merged = subprocess.run([sys.executable, "-m", "pytest_camaudit", "merge", *map(str, shards), "--expect-shards=3",
                             f"--json={tmp_path / 'merged.json'}", f"--report={tmp_path / 'merged.html'}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert merged.returncode == single.returncode, merged.stdout[-3000:] + merged.stderr[-3000:]
    assert merged.returncode == (1 if model else 0)
    one, many = _comparable(tmp_path / "single.json"), _comparable(tmp_path / "merged.json")
    assert many["tables"] == one["tables"] and many["per_class"] == one["per_class"] and many["gates"] == one["gates"]
    assert many == one
    if "--camaudit-discover" in model:
        assert one["discovery"]["line"] in merged.stdout and one["discovery"]["line"] in single.stdout
        assert "camaudit evidence atlas: drift from the baseline" in single.stdout
    cards = _cards(tmp_path / "merged.html")
    assert cards == _cards(tmp_path / "single.html")
    assert {nodeid for outcome, nodeid in cards if outcome == "failed"} == {
        c["nodeid"] for c in one["cases"] if c["verdict"] == "failed"}
    for table in one["tables"]:  # the terminal prints the same tables
        assert table["title"] in merged.stdout and table["title"] in single.stdout
