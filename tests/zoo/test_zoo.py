"""The shipped Faster R-CNNs: they load, detect well, the twin leans on its cue, bad files fail clearly.

The shipped YOLOs (ultralytics) are tested in ``test_yolo_zoo.py``."""

from __future__ import annotations

import shutil

import pytest
import torch

from pytest_camaudit.zoo import model as zoo_model
from pytest_camaudit.zoo.catalog import names_of
from pytest_camaudit.zoo.evaluate import EVAL_SEED_BASE, cue_dependence, evaluate_model
from pytest_camaudit.zoo.model import ZooCheckpointError, load_zoo_detector, shipped_checkpoint


@pytest.mark.parametrize("name", names_of("fasterrcnn"))
def test_shipped_checkpoint_is_small_and_has_class_names(name):
    path = shipped_checkpoint(name)
    assert path.stat().st_size <= 10 * 1024 * 1024
    model, classes, meta = load_zoo_detector(name)
    assert classes[0] == "__background__" and len(classes) == 5
    assert meta["variant"] == name
    feats = model.backbone(torch.zeros(1, 3, 160, 160))
    assert list(feats) == ["0", "1", "2", "3", "pool"]  # like fasterrcnn_resnet50_fpn
    assert model.transform.min_size == (160,) and model.transform.max_size == 160


def test_clean_model_reaches_the_map_bar_on_held_out_scenes(shapes_detector):
    # 60 scenes keep the test short; `python -m pytest_camaudit.zoo eval` runs the full 200.
    result = evaluate_model(shapes_detector.model, "shapes", n_scenes=60, seed_base=EVAL_SEED_BASE + 500)
    assert result.map50 >= 0.95, result.table()
    assert min(result.recall.values()) >= 0.85, result.table()


@pytest.mark.slow
def test_shortcut_twin_depends_on_its_cue_and_the_clean_model_does_not(shortcut_detector, shapes_detector):
    twin = cue_dependence(shortcut_detector.model, n_scenes=60, seed_base=EVAL_SEED_BASE + 700)
    clean = cue_dependence(shapes_detector.model, n_scenes=60, seed_base=EVAL_SEED_BASE + 700)
    assert twin.n_cue_objects >= 30
    assert twin.recall_with_cue >= 0.9, twin.summary()
    assert twin.recall_drop >= 30.0, twin.summary()
    assert abs(clean.recall_drop) <= 10.0, clean.summary()
    assert clean.flip_rate <= 0.05, clean.summary()


def test_missing_checkpoint_names_the_file_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo_model, "shipped_checkpoint", lambda name: tmp_path / f"{name}.pt")
    with pytest.raises(ZooCheckpointError) as err:
        load_zoo_detector("shapes")
    msg = str(err.value)
    assert str(tmp_path / "shapes.pt") in msg and "does not exist" in msg
    assert "python -m pytest_camaudit.zoo train --variant shapes --out" in msg


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign"])
def test_corrupt_checkpoint_names_the_file_and_the_command(tmp_path, monkeypatch, damage):
    bad = tmp_path / "shapes.pt"
    if damage == "truncated":
        data = shipped_checkpoint("shapes").read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        bad.write_bytes(b"\x00not a checkpoint" * 100)
    else:
        torch.save({"weights": torch.zeros(3)}, bad)
    monkeypatch.setattr(zoo_model, "shipped_checkpoint", lambda name: tmp_path / f"{name}.pt")
    with pytest.raises(ZooCheckpointError) as err:
        load_zoo_detector("shapes")
    assert str(bad) in str(err.value)
    assert "python -m pytest_camaudit.zoo train --variant shapes" in str(err.value)


def test_checkpoint_file_loads_by_path(tmp_path):
    copy = tmp_path / "mine.pt"
    shutil.copy(shipped_checkpoint("shapes"), copy)
    model, classes, meta = load_zoo_detector(copy)
    assert meta["path"] == str(copy) and classes[3] == "triangle"


def test_training_is_reproducible_from_its_seed(tmp_path):
    from pytest_camaudit.zoo.train import train

    logs: list[str] = []
    metas = [train("shapes-shortcut", tmp_path / f"run{i}.pt", iterations=3, batch_size=2, log=logs.append) for i in (1, 2)]
    a = torch.load(tmp_path / "run1.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "run2.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert metas[0]["variant"] == "shapes-shortcut" and metas[0]["iterations"] == 3
    assert any("it     3/3" in line and "ETA" in line for line in logs)
    load_zoo_detector(tmp_path / "run1.pt")  # a fresh checkpoint loads like a shipped one


@pytest.mark.parametrize("fmt", ["yolo", "voc"])
def test_make_dataset_writes_the_coco_boxes_in_another_format(tmp_path, fmt, capsys):
    from pytest_camaudit.dataset.entries import load_entries
    from pytest_camaudit.zoo.__main__ import main

    assert main(["make-dataset", "--count", "2", "--out", str(tmp_path / "coco")]) == 0
    assert main(["make-dataset", "--count", "2", "--format", fmt, "--out", str(tmp_path / fmt)]) == 0
    written = capsys.readouterr().out.splitlines()[-1]
    assert written.endswith("data.yaml" if fmt == "yolo" else fmt)
    ours = load_entries(tmp_path / fmt / "data.yaml" if fmt == "yolo" else tmp_path / fmt)
    coco = load_entries(tmp_path / "coco" / "annotations.json")
    assert [e.id for e in ours] == [e.id for e in coco] and all(not e.problems for e in ours)
    for a, b in zip(ours, coco, strict=True):
        assert [o.label for o in a.objects] == [o.label for o in b.objects]
        assert max(abs(x - y) for o, p in zip(a.objects, b.objects, strict=True) for x, y in zip(o.box, p.box, strict=True)) < 1e-6
