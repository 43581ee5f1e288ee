"""Discovery over a run's case records: objects counted once, the verdict line, gates, waivers, atlases and drift."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_camaudit.discovery.atlas import AtlasFileError, atlas_of, drift, read_atlases, write_atlases
from pytest_camaudit.discovery.objects import collect
from pytest_camaudit.discovery.summary import DiscoverySettings, discover
from pytest_camaudit.discovery.tables import discovery_tables
from pytest_camaudit.records import CaseRecord, EvidenceRecord
from pytest_camaudit.surroundings import CROP_CELLS, REGIONS, encode_grid


def evidence(key: str, label: str, profile: dict[str, float] | None, crop: np.ndarray | None = None) -> EvidenceRecord:
    full = dict.fromkeys(REGIONS, 0.0) if profile is not None else {}
    full.update(profile or {})
    if profile is not None:
        full["outside"] = max(full.values())
    return EvidenceRecord(key, label, [10.0, 10.0, 30.0, 30.0], 0.9, [64, 64], "eigengradcam" if crop is not None else None,
                          encode_grid(crop) if crop is not None else "", full)


def crop_at(cells: tuple[slice, slice]) -> np.ndarray:
    c = np.zeros((CROP_CELLS, CROP_CELLS), np.float32)
    c[cells] = 1.0
    return c


BOX = (slice(5, 15), slice(5, 15))


def run(n_tagged: int = 12, n_clean: int = 30, tests_per_object: int = 1) -> list[CaseRecord]:
    """Cases of a run: triangles tagged top-left and clean circles, each object checked by ``tests_per_object`` tests."""
    out = []
    for t in range(tests_per_object):
        for i in range(n_tagged):
            out.append(CaseRecord(f"test_{t}.py::tri[{i}]", f"tri-{i}.png", evidence=[evidence(f"img{i}:0", "triangle", {"top-left": 0.8}, crop_at(BOX))]))
        for i in range(n_clean):
            out.append(CaseRecord(f"test_{t}.py::circ[{i}]", f"circ-{i}.png", evidence=[evidence(f"cimg{i}:0", "circle", {"top": 0.02}, crop_at(BOX))]))
    return out


def test_the_line_says_which_classes_are_flagged():
    result = discover(run(), DiscoverySettings(enabled=True))
    assert result.line() == "camaudit discovery: flagged triangle"
    assert [c.status for c in result.classes] == ["clear", "flagged"]
    assert discover(run(n_tagged=0), DiscoverySettings(enabled=True)).line() == "camaudit discovery: nothing flagged"
    small = discover(run(n_tagged=3, n_clean=3), DiscoverySettings(enabled=True))
    assert small.line() == "camaudit discovery: nothing flagged (too few objects to judge: circle, triangle)"


def test_objects_are_counted_once_however_many_tests_check_them():
    once, thrice = (discover(run(tests_per_object=k), DiscoverySettings(enabled=True)) for k in (1, 3))
    assert [c.objects for c in thrice.classes] == [30, 12]
    assert thrice.classes == once.classes
    # a record with a profile wins over one without, whatever the order
    cases = [CaseRecord("b::t", "x", evidence=[evidence("k:0", "star", None, crop_at(BOX))]),
             CaseRecord("a::t", "x", evidence=[evidence("k:0", "star", {"left": 0.9})])]
    for order in (cases, cases[::-1]):
        (kept,) = collect(order).by_key.values()
        assert kept.profile is not None and kept.nodeid == "a::t"


def test_a_shard_or_an_interrupted_run_judges_nothing():
    result = discover(run(), DiscoverySettings(enabled=True, gate=True), pending="deferred to the merge (42 of 42 cases in this shard)")
    assert result.flagged == [] and result.failures == [] and result.state == "deferred"
    assert result.line() == "camaudit discovery: deferred to the merge (42 of 42 cases in this shard); nothing judged"
    assert discover(run(), DiscoverySettings(enabled=True), pending="incomplete (3 of 8 cases)").line().startswith(
        "camaudit discovery: incomplete (3 of 8 cases)")


def test_the_gate_fails_a_flagged_class_and_a_waiver_or_a_margin_takes_it_back():
    gated = discover(run(), DiscoverySettings(enabled=True, gate=True))
    assert len(gated.failures) == 1 and gated.failures[0].startswith("discovery: triangle is flagged: a group of 12 of its 12 objects")
    assert "beyond the top-left corner of the box" in gated.failures[0] and "discover=off" in gated.failures[0]
    waived = discover(run(), DiscoverySettings.from_settings({"gate_discovery": True, "class_thresholds": "triangle: discover=off"}))
    assert waived.failures == [] and waived.flagged == [] and waived.classes[1].status == "waived"
    lenient = DiscoverySettings.from_settings({"discover": True, "class_thresholds": "*: discover=0.9; circle: discover=0.3"})
    assert lenient.margin("triangle") == 0.9 and lenient.margin("circle") == 0.3
    assert discover(run(), lenient).flagged == []
    assert not DiscoverySettings.from_settings({}).enabled and DiscoverySettings.from_settings({"gate_discovery": True}).enabled


def test_its_tables_and_the_examples_the_report_shows():
    result = discover(run(), DiscoverySettings(enabled=True))
    table, = discovery_tables(result)
    assert table["title"] == "camaudit discovery per class (flagged triangle)"
    assert table["rows"][1][:2] == ["triangle", 12] and table["rows"][1][-1] == "FLAGGED"
    flagged = next(g for g in result.classes[1].groups if g.status == "flagged")
    assert set(result.examples) == set(flagged.examples) and result.examples[flagged.examples[0]]["case"].startswith("tri-")


def test_atlases_average_the_crops_in_box_coordinates_and_a_baseline_shows_their_drift(tmp_path):
    objs = collect(run()).classes()
    tri = atlas_of(objs["triangle"])
    assert tri is not None and tri.n == 12 and tri.grid.sum() == pytest.approx(1.0) and tri.grid[BOX].sum() == pytest.approx(1.0)
    assert drift(tri.grid, tri.grid) == 0.0
    write_atlases(tmp_path, {"triangle": tri}, {"model": "shapes"})
    baseline = read_atlases(tmp_path)
    assert baseline is not None and drift(baseline["triangle"].grid, tri.grid) == pytest.approx(0.0, abs=1e-3)
    moved = [CaseRecord("t::m", f"m{i}", evidence=[evidence(f"m{i}:0", "triangle", None, crop_at((slice(0, 5), slice(0, 5))))])
             for i in range(5)]
    shown = discover(moved, DiscoverySettings(), baseline=baseline, baseline_dir=str(tmp_path))
    assert shown.drift["triangle"]["drift"] > 1.0 and shown.drift["triangle"]["verdict"] == "shown" and shown.failures == []
    judged = discover(moved, DiscoverySettings(atlas_tolerance=0.5), baseline=baseline)
    assert judged.drift["triangle"]["verdict"] == "FAIL" and "evidence atlas of triangle" in judged.failures[0]
    old = discover(moved, DiscoverySettings(), baseline=None, baseline_dir=str(tmp_path / "old"))
    assert "keeps no evidence atlas" in old.drift_note and discovery_tables(old)[0]["rows"] == []
    (tmp_path / "atlas.json").write_text("{not json")
    with pytest.raises(AtlasFileError, match="--camaudit-update-baseline"):
        read_atlases(tmp_path)


def test_evidence_travels_on_the_case_record():
    case = run()[0]
    again = CaseRecord.from_dict(case.to_dict())
    assert again.evidence == case.evidence and again.evidence[0].profile["top-left"] == 0.8
