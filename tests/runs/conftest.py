"""Fixtures of the run-file tests: synthetic shards (:mod:`support.runfiles`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.reportdata import synthetic_cases
from support.runfiles import write_shard

from pytest_camaudit.records import CaseRecord


@pytest.fixture(scope="session")
def cases() -> list[CaseRecord]:
    """Nine synthetic cases (one test each; 4 in 5 failing) with three figures each."""
    return list(synthetic_cases(9))


@pytest.fixture
def shards(tmp_path: Path, cases: list[CaseRecord]) -> list[Path]:
    """The nine cases as three shards (every third case), and the same run whole as ``single.json``."""
    out = [write_shard(tmp_path / f"shard-{g}.json", cases[g - 1 :: 3], shard={"splits": 3, "group": g}) for g in (1, 2, 3)]
    write_shard(tmp_path / "single.json", cases)
    return out
