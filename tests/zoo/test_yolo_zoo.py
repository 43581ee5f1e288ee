"""The shipped YOLOs (ultralytics): small, accurate, the twin leans on its tag, the command line trains and evaluates them.

Skipped, with the reason, where ultralytics is not installed. Nothing here reaches the network
(every socket connection fails).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from support.network import block_network

from pytest_camaudit.detectors.ultralytics.runtime import offline_ultralytics

try:  # the offline import first (YOLO_OFFLINE, a temporary settings folder), so importorskip finds it done
    offline_ultralytics()
except ImportError:
    pass
pytest.importorskip("ultralytics", reason="ultralytics is not installed (pip install 'pytest-camaudit[yolo]')")

from pytest_camaudit.zoo import __main__ as cli
from pytest_camaudit.zoo import yolo as zoo_yolo
from pytest_camaudit.zoo.catalog import checkpoint_architecture, names_of
from pytest_camaudit.zoo.evaluate import EVAL_SEED_BASE, cue_dependence, evaluate_model
from pytest_camaudit.zoo.model import ZooCheckpointError
from pytest_camaudit.zoo.yolo import YOLO_MODELS, load_yolo_checkpoint, shipped_yolo_checkpoint, yolo_detections, yolo_evaluation_detector


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every socket connection fails loudly: nothing may reach the network."""
    block_network(monkeypatch)


@functools.cache
def detections_fn(name: str):
    """The YOLO as the zoo evaluates it: its detector (``Detector.detect``) at ultralytics' validation threshold."""
    model, classes, meta = load_yolo_checkpoint(name)
    return yolo_evaluation_detector(model, meta["imgsz"], class_names=classes)


def test_the_old_detections_function_is_the_detectors_own_run():
    from pytest_camaudit.zoo.evaluate import detect
    from pytest_camaudit.zoo.world import make_layout, render

    model, _, meta = load_yolo_checkpoint("shapes-yolo")
    images = [render(make_layout(EVAL_SEED_BASE + i)) for i in range(3)]
    for old, new in zip(yolo_detections(model, images, imgsz=meta["imgsz"]), detect(detections_fn("shapes-yolo"), images), strict=True):
        assert len(old.scores) > 0 and all(np.array_equal(getattr(old, k), getattr(new, k)) for k in ("boxes", "labels", "scores"))


def test_the_yolos_are_the_catalogs_yolo_names():
    assert YOLO_MODELS == names_of("yolo") == ("shapes-yolo", "shapes-yolo-shortcut")
    assert all(checkpoint_architecture(shipped_yolo_checkpoint(n)) == "yolo" for n in YOLO_MODELS)
    assert checkpoint_architecture(shipped_yolo_checkpoint("shapes-yolo").with_name("shapes.pt")) == "fasterrcnn"


@pytest.mark.parametrize("name", YOLO_MODELS)
def test_shipped_yolo_is_small_plain_data_and_carries_its_license(name):
    path = shipped_yolo_checkpoint(name)
    assert path.stat().st_size <= 10 * 1024 * 1024
    payload = torch.load(path, map_location="cpu", weights_only=True)  # no pickled classes: loads without trusting code
    assert payload["format"] == zoo_yolo.YOLO_FORMAT and payload["imgsz"] == 160
    model, classes, meta = load_yolo_checkpoint(name)
    assert classes == ["__background__", "circle", "square", "triangle", "star"]
    assert model.names == {0: "circle", 1: "square", 2: "triangle", 3: "star"} and not model.training
    assert meta["name"] == name and meta["variant"] == zoo_yolo.MODELS[name].world and meta["arch"] == "yolo11n.yaml"
    assert "AGPL-3.0" in meta["license"]


def test_clean_yolo_reaches_the_map_bar_on_held_out_scenes():
    # 60 scenes keep the test short; `python -m pytest_camaudit.zoo eval --model shapes-yolo` runs the full 200 (0.986)
    result = evaluate_model(detections_fn("shapes-yolo"), "shapes", n_scenes=60, seed_base=EVAL_SEED_BASE + 500)
    assert result.map50 >= 0.90, result.table()
    assert min(result.recall.values()) >= 0.80, result.table()


@pytest.mark.slow
def test_yolo_twin_depends_on_its_tag_and_the_clean_yolo_does_not():
    twin = cue_dependence(detections_fn("shapes-yolo-shortcut"), n_scenes=60, seed_base=EVAL_SEED_BASE + 700)
    clean = cue_dependence(detections_fn("shapes-yolo"), n_scenes=60, seed_base=EVAL_SEED_BASE + 700)
    assert twin.n_cue_objects >= 30
    assert twin.recall_drop >= 30.0, twin.summary()
    assert abs(clean.recall_drop) <= 10.0, clean.summary()


def test_a_missing_or_foreign_yolo_checkpoint_names_the_file_and_the_command(tmp_path):
    missing = tmp_path / "shapes-yolo.pt"
    with pytest.raises(ZooCheckpointError, match=r"does not exist.*train --variant shapes-yolo --out"):
        load_yolo_checkpoint(missing)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ZooCheckpointError, match=rf"{foreign} is not a pytest-camaudit YOLO checkpoint"):
        load_yolo_checkpoint(foreign)
    with pytest.raises(ZooCheckpointError, match="unknown YOLO detector"):
        shipped_yolo_checkpoint("shapes")


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["--model", "shapes-yolo"], ["--variant", "shapes-yolo"]], ids=["model", "variant"])
def test_cli_eval_reports_the_yolos_map(capsys, args):
    assert cli.main(["eval", *args, "--scenes", "8"]) == 0  # `--variant NAME` as `train` takes it
    out = capsys.readouterr().out
    assert "model shapes-yolo" in out and "world 'shapes', 8 scenes" in out and "mAP@0.5" in out


def test_cli_eval_refuses_two_detectors():
    with pytest.raises(SystemExit, match="--variant shapes-yolo names a detector, and --model names another"):
        cli.main(["eval", "--variant", "shapes-yolo", "--model", "shapes", "--scenes", "1"])


@pytest.mark.parametrize(("variant", "world", "epochs"), [("shapes-yolo", "shapes", 8), ("shapes-yolo-shortcut", "shapes-shortcut", 16)])
def test_cli_train_passes_each_yolos_schedule(monkeypatch, tmp_path, variant, world, epochs):
    calls = []
    monkeypatch.setattr(zoo_yolo, "train_yolo", lambda out, **kwargs: calls.append((out, kwargs)) or {})
    assert cli.main(["train", "--variant", variant, "--out", str(tmp_path / "x.pt")]) == 0
    assert cli.main(["train", "--variant", variant, "--out", str(tmp_path / "y.pt"), "--epochs", "1", "--threads", "2"]) == 0
    (out, first), (_, second) = calls
    assert out == tmp_path / "x.pt" and first["variant"] == world and first["epochs"] == epochs and "threads" not in first
    assert second["epochs"] == 1 and second["threads"] == 2 and second["variant"] == world


def test_cli_train_refuses_the_other_architectures_arguments(tmp_path):
    with pytest.raises(SystemExit, match="--iterations applies to the Faster R-CNNs, not shapes-yolo"):
        cli.main(["train", "--variant", "shapes-yolo", "--out", str(tmp_path / "x.pt"), "--iterations", "3"])
    with pytest.raises(SystemExit, match="--epochs applies to the YOLO detectors, not shapes"):
        cli.main(["train", "--variant", "shapes", "--out", str(tmp_path / "x.pt"), "--epochs", "3"])


@pytest.mark.slow
def test_training_runs_offline_with_ultralytics_trainer_and_loads(tmp_path):
    """One epoch on 8 scenes: the trainer runs offline, puts torch's threads back, and writes a
    checkpoint that loads like a shipped one (it detects nothing yet: no accuracy is asserted)."""
    threads = torch.get_num_threads()
    logs: list[str] = []
    meta = zoo_yolo.train_yolo(tmp_path / "tiny.pt", epochs=1, n_train=8, n_val=4, batch=4, work_dir=tmp_path / "work",
                               eval_scenes=4, log=logs.append)
    assert torch.get_num_threads() == threads
    assert meta["epochs"] == 1 and meta["train_seeds"] == [0, 8] and meta["arch"] == "yolo11n.yaml"
    assert (tmp_path / "work" / "data" / "labels" / "train" / "scene-0.txt").read_text().strip()
    model, classes, loaded = load_yolo_checkpoint(tmp_path / "tiny.pt")
    assert classes[3] == "triangle" and loaded["name"] == "tiny" and loaded["imgsz"] == 160
    assert any("held-out mAP@0.5 on 4 'shapes' scenes" in line for line in logs)
