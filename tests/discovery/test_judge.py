"""Grouping and judging a class's objects by where their evidence sits (synthetic profiles, no detector)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pytest_camaudit.discovery.groups import MAX_CLUSTERED, group_objects, specific
from pytest_camaudit.discovery.judge import DIFFUSE_SHARE, MIN_GROUP, MIN_OBJECTS, judge_class
from pytest_camaudit.discovery.objects import AuditedObject
from pytest_camaudit.surroundings import REGIONS


def obj(key: str, label: str = "triangle", **loss: float) -> AuditedObject:
    """An object losing ``loss[region]`` of its score with that region filled (0 elsewhere; ``outside`` at least the max)."""
    p = np.zeros(len(REGIONS))
    for name, v in loss.items():
        p[REGIONS.index(name.replace("_", "-"))] = v
    if "outside" not in loss:
        p[REGIONS.index("outside")] = p.max()
    return AuditedObject(key, label, "test_x.py::t", key, 0.9, p, None, None)


def noise(key: str, seed: int, label: str = "triangle") -> AuditedObject:
    rng = np.random.default_rng(seed)
    return AuditedObject(key, label, "t", key, 0.9, rng.uniform(-0.05, 0.15, len(REGIONS)), None, None)


def test_objects_tagged_at_two_corners_form_two_groups_and_flag_their_class():
    objs = [obj(f"a{i:02d}", top_left=0.6 + 0.03 * i) for i in range(8)] + [obj(f"b{i:02d}", bottom_right=0.9) for i in range(6)]
    objs += [noise(f"n{i:02d}", i) for i in range(20)]
    finding = judge_class("triangle", sorted(objs, key=lambda o: o.key), 0.5)
    assert finding.status == "flagged" and finding.objects == 34
    flagged = [g for g in finding.groups if g.status == "flagged"]
    assert [(g.region, g.size) for g in flagged] == [("top-left", 8), ("bottom-right", 6)]
    assert flagged[0].where == "beyond the top-left corner of the box" and flagged[0].loss == pytest.approx(np.mean([0.6 + 0.03 * i for i in range(8)]))
    assert set(flagged[1].members) == {f"b{i:02d}" for i in range(6)} and len(flagged[1].examples) == 6


def test_a_clean_class_with_scattered_noise_is_clear():
    objs = [noise(f"n{i:03d}", i, "circle") for i in range(200)]
    objs += [obj(f"z{i}", "circle", **{r: 0.9}) for i, r in enumerate(["top", "left", "far", "right", "bottom"])]  # one each
    finding = judge_class("circle", sorted(objs, key=lambda o: o.key), 0.5)
    assert finding.status == "clear" and all(g.status == "too few objects" for g in finding.groups)


def test_fragile_objects_that_lose_score_wherever_anything_is_filled_rest_on_no_place():
    fragile = [obj(f"f{i:02d}", "star", top=0.8, right=0.7, left=0.75, bottom=0.7, top_left=0.6, far=0.5) for i in range(15)]
    assert specific(fragile[0]).max() < 0.5
    assert judge_class("star", fragile + [noise(f"n{i}", i, "star") for i in range(10)], 0.5).status == "clear"


def test_a_small_group_and_a_minor_one_are_reported_not_judged():
    objs = [obj(f"a{i}", top=0.9) for i in range(MIN_GROUP - 1)] + [noise(f"n{i:03d}", i) for i in range(40)]
    finding = judge_class("triangle", objs, 0.5)
    assert finding.status == "clear" and finding.groups[0].status == "too few objects"
    many = [obj(f"b{i}", left=0.9) for i in range(6)] + [noise(f"n{i:03d}", i) for i in range(80)]  # 6 of 86: under 10 %
    assert judge_class("triangle", many, 0.5).groups[0].status == "minor"


def test_surroundings_as_a_whole_flag_only_most_of_a_class():
    diffuse = [obj(f"d{i:02d}", outside=0.9) for i in range(12)]
    finding = judge_class("boat", diffuse + [noise(f"n{i:02d}", i, "boat") for i in range(12)], 0.5)
    assert finding.groups[0].region == "outside" and finding.groups[0].status == "flagged" and 12 / 24 >= DIFFUSE_SHARE
    assert finding.groups[0].where == "all around the box (its surroundings as a whole)"
    few = judge_class("boat", diffuse[:5] + [noise(f"n{i:02d}", i, "boat") for i in range(20)], 0.5)
    assert few.status == "clear" and few.groups[0].status == "minor"


def test_the_margin_decides_and_a_waived_class_is_shown_but_not_judged():
    objs = [obj(f"a{i:02d}", far=0.55) for i in range(10)] + [noise(f"n{i:02d}", i) for i in range(10)]
    assert judge_class("triangle", objs, 0.5).status == "flagged"
    assert judge_class("triangle", objs, 0.7).status == "clear"
    waived = judge_class("triangle", objs, None)
    assert waived.status == "waived" and waived.margin is None and waived.groups


def test_too_few_objects_and_no_profiles():
    assert judge_class("star", [obj(f"a{i}", top=0.9) for i in range(MIN_OBJECTS - 1)], 0.5).status == "too few objects"
    bare = AuditedObject("k", "star", "t", "k", 0.9, None, None, None)
    finding = judge_class("star", [bare], 0.5)
    assert finding.status == "no profiles" and finding.unprofiled == 1 and finding.objects == 0


def test_groups_do_not_depend_on_the_order_objects_arrive_in():
    objs = [obj(f"a{i:02d}", top_left=0.5 + 0.04 * i, top=0.1 * (i % 3)) for i in range(12)]
    objs += [obj(f"b{i:02d}", right=0.7, bottom_right=0.3 + 0.05 * i) for i in range(9)] + [noise(f"n{i:02d}", i) for i in range(30)]
    reference = judge_class("triangle", sorted(objs, key=lambda o: o.key), 0.5)
    for seed in range(3):
        shuffled = objs[:]
        random.Random(seed).shuffle(shuffled)
        # the caller sorts by key (RunObjects.classes does); the result must not depend on anything else
        assert judge_class("triangle", sorted(shuffled, key=lambda o: o.key), 0.5) == reference


def test_beyond_the_clustering_bound_objects_join_the_nearest_group(monkeypatch):
    import pytest_camaudit.discovery.groups as groups

    objs = [obj(f"a{i:03d}", top=0.9) for i in range(30)] + [obj(f"b{i:03d}", left=0.8) for i in range(30)]
    full = group_objects(objs, 0.5)
    monkeypatch.setattr(groups, "MAX_CLUSTERED", 20)
    bounded = group_objects(objs, 0.5)
    assert [g.members for g in bounded] == [g.members for g in full] and len(full) == 2
    assert MAX_CLUSTERED >= 1000


def test_a_neighbour_in_the_region_is_named_in_the_words():
    objs = [obj(f"a{i:02d}", left=0.8) for i in range(8)] + [noise(f"n{i:02d}", i) for i in range(8)]
    for o in objs[:6]:
        o.neighbours["left"] = ["square"]
    (g, *_) = judge_class("triangle", objs, 0.5).groups
    assert g.where == "left of the box (where a neighbouring square is, for 6 of 8)" and g.neighbours == {"square": 6}


def test_one_group_of_a_mostly_clear_class_does_not_flag_it():
    """A fifth of the clean YOLO's small stars lose score above their boxes: a group, but not the class's habit."""
    objs = [obj(f"a{i:02d}", "star", top=0.8) for i in range(8)] + [noise(f"n{i:02d}", i, "star") for i in range(52)]
    finding = judge_class("star", objs, 0.5)
    assert finding.reliant == pytest.approx(8 / 60, abs=1e-4) and finding.status == "clear"
    assert finding.groups[0].size == 8 and finding.groups[0].share >= 0.1 and finding.groups[0].status == "minor"
