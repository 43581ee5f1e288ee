"""The procedural shapes world: deterministic, exact counterfactuals, COCO export."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_camaudit.zoo.world import CLASSES, CUE_SIZE, cue_objects, make_layout, make_scene, render


def test_same_seed_same_bytes_different_seed_different_scene():
    a, b = make_scene(123), make_scene(123)
    assert a.image.tobytes() == b.image.tobytes()
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
    assert make_scene(124).image.tobytes() != a.image.tobytes()


def test_scene_contract():
    for seed in range(60):
        s = make_scene(seed)
        assert s.image.dtype == np.uint8 and s.image.shape == (160, 160, 3)
        assert s.boxes.dtype == np.float32 and s.boxes.shape == (len(s.labels), 4)
        assert 1 <= len(s.labels) <= 4
        assert ((s.labels >= 1) & (s.labels < len(CLASSES))).all()
        x1, y1, x2, y2 = s.boxes.T
        assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= 160).all() and (y2 <= 160).all()
        assert ((x2 - x1) >= 10).all() and ((y2 - y1) >= 10).all()
        assert (np.maximum(x2 - x1, y2 - y1) <= 92).all()


def test_every_class_appears_with_varied_sizes():
    labels, sizes = [], []
    for seed in range(200):
        lay = make_layout(seed)
        labels += list(lay.labels)
        sizes += list((lay.boxes[:, 2:] - lay.boxes[:, :2]).max(1))
    assert set(labels) == {1, 2, 3, 4}
    assert min(sizes) < 22 and max(sizes) > 75


def test_cue_changes_only_the_tag_pixels_and_only_triangles_carry_it():
    for seed in range(40):
        lay = make_layout(seed)
        cues = cue_objects(lay, "shapes-shortcut")
        assert all(CLASSES[lay.objects[i].label] == "triangle" for i in cues)
        assert len(cues) == sum(CLASSES[o.label] == "triangle" for o in lay.objects)
        clean, biased = render(lay), render(lay, cues)
        diff = (clean != biased).any(axis=2)
        allowed = np.zeros_like(diff)
        for i in cues:
            x1, y1, x2, y2 = lay.cue_box(i)
            allowed[y1:y2, x1:x2] = True
            # the tag sits outside its object's box
            bx1, by1, bx2, by2 = lay.objects[i].box
            assert x2 <= bx1 or x1 >= bx2 or y2 <= by1 or y1 >= by2
        assert not (diff & ~allowed).any()
        if cues:
            assert diff.sum() >= CUE_SIZE * CUE_SIZE // 2


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="expected one of shapes, shapes-shortcut"):
        make_scene(1, "shapes-biased")


def test_coco_export_round_trips(scene_dir):
    doc = json.loads((scene_dir / "annotations.json").read_text())
    assert [c["name"] for c in doc["categories"]] == list(CLASSES[1:])
    assert len(doc["images"]) == 6
    for im in doc["images"]:
        assert (scene_dir / "images" / im["file_name"]).is_file()
        lay = make_layout(im["seed"])
        anns = [a for a in doc["annotations"] if a["image_id"] == im["id"]]
        got = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns])
        np.testing.assert_allclose(got, lay.boxes, atol=0.02)
        assert [a["category_id"] for a in anns] == list(lay.labels)


def test_decals_are_unannotated_triangles_drawn_only_in_the_shortcut_world():
    from pytest_camaudit.zoo.world import render_variant

    with_decals = 0
    for seed in range(80):
        lay = make_layout(seed)
        assert all(CLASSES[d.label] == "triangle" for d in lay.decals)
        clean = render_variant(lay, "shapes")
        assert clean.tobytes() == render(lay).tobytes()  # the clean world never shows decals
        if lay.decals:
            with_decals += 1
            shortcut = render_variant(lay, "shapes-shortcut")
            no_tags = render(lay, (), decals=True)
            assert (shortcut != clean).any() and (no_tags != clean).any()
        for d in lay.decals:  # clear of every annotated box and cue spot
            for i, obj in enumerate(lay.objects):
                for other in (obj.box, lay.cue_box(i)):
                    assert d.box[2] <= other[0] or other[2] <= d.box[0] or d.box[3] <= other[1] or other[3] <= d.box[1]
    assert with_decals >= 30


def test_curated_scenes_have_visible_objects():
    from pytest_camaudit.zoo.world import clear_view, occlusion

    kept = [s for s in range(20_000_000, 20_000_060) if clear_view(make_layout(s))]
    assert 20 <= len(kept) < 60
    for s in kept:
        lay = make_layout(s)
        assert max(occlusion(lay)) <= 0.25
        assert (np.maximum(lay.boxes[:, 2] - lay.boxes[:, 0], lay.boxes[:, 3] - lay.boxes[:, 1]) >= 20).all()
    heavy = next(s for s in range(20_000_000, 20_000_060) if max(occlusion(make_layout(s))) > 0.5)
    assert not clear_view(make_layout(heavy))
