"""ultralytics YOLO: loading (zoo names, yaml files, checkpoints, objects from a conftest) and the offline import.

Every test runs with the network blocked; skipped, with the reason, where ultralytics is not installed.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from support.network import block_network
from support.yolo import SCENE, as_tensor, ultralytics  # skips this module where ultralytics is not installed

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.detectors.ultralytics.yolo import UltralyticsFamily
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import ModelLoadError
from pytest_camaudit.zoo.yolo import load_yolo_checkpoint


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Every socket connection fails loudly: nothing may reach the network."""
    block_network(monkeypatch)


@pytest.fixture(scope="module")
def zoo() -> Detector:
    return load_detector("shapes-yolo", device="cpu")


@pytest.mark.slow
def test_importing_ultralytics_leaves_threads_environment_and_printing_alone():
    # and its monkey patches: PIL.Image.open (which tries to install pi-heif on every unreadable image), torch.save, cv2's I/O
    code = (
        "import os, cv2, numpy as np, torch\n"
        "from PIL import Image\n"
        "torch.set_num_threads(2); cv2.setNumThreads(3)\n"
        "before = (torch.get_num_threads(), cv2.getNumThreads(), np.get_printoptions(), str(torch.ones(3) / 3), "
        "os.environ.get('OMP_NUM_THREADS'), Image.open, torch.save, cv2.imread, cv2.imwrite)\n"
        "from pytest_camaudit.detectors.ultralytics.runtime import import_ultralytics\n"
        "import_ultralytics()\n"
        "after = (torch.get_num_threads(), cv2.getNumThreads(), np.get_printoptions(), str(torch.ones(3) / 3), "
        "os.environ.get('OMP_NUM_THREADS'), Image.open, torch.save, cv2.imread, cv2.imwrite)\n"
        "assert before == after, (before, after)\n"
        "assert os.environ['YOLO_OFFLINE'] == '1' and 'camaudit-yolo-config' in os.environ['YOLO_CONFIG_DIR']\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOLO_") and k != "OMP_NUM_THREADS"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Ultralytics Settings" not in proc.stdout + proc.stderr


# -- loading ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """``shapes-yolo`` as ultralytics itself writes a checkpoint: the pickled fp16 model and its training arguments."""
    model, _, _ = load_yolo_checkpoint("shapes-yolo")
    path = tmp_path_factory.mktemp("ultralytics") / "best.pt"
    torch.save({"model": copy.deepcopy(model).half(), "train_args": {"imgsz": 160, "task": "detect"},
                "version": ultralytics.__version__}, path)
    return path


@pytest.mark.parametrize("name", ["shapes-yolo", "shapes-yolo-shortcut"])
def test_load_detector_loads_the_zoo_yolos(name):
    d = load_detector(name, device="cpu")
    assert d.name == name and d.meta["imgsz"] == 160 and "AGPL-3.0" in d.meta["license"]
    assert d.detect([as_tensor(load_image(SCENE).pixels)])[0]


def test_load_detector_builds_a_yaml_with_random_weights():
    d = load_detector("yolo11n.yaml", device="cpu")
    assert isinstance(d.family, UltralyticsFamily) and d.family.image_size(d.model) == 640
    assert len(d.class_names) == 81 and "noise" in d.meta["weights"]
    with pytest.raises(ModelLoadError, match=r"cannot build an ultralytics YOLO from yolo99z\.yaml"):
        load_detector("yolo99z.yaml", device="cpu")
    with pytest.raises(ModelLoadError, match="never downloaded"):
        load_detector("https://example.com/yolo11n.yaml", device="cpu")


def test_load_detector_reads_an_ultralytics_checkpoint(saved, zoo):
    d = load_detector(str(saved), device="cpu")
    assert isinstance(d.family, UltralyticsFamily) and d.family.image_size(d.model) == 160 and d.name == "best.pt"
    image = as_tensor(load_image(SCENE).pixels)
    (a,), (b,) = d.run([image]), zoo.run([image])
    assert torch.equal(a["labels"], b["labels"]) and torch.allclose(a["boxes"], b["boxes"], atol=1e-3)
    with pytest.raises(ModelLoadError, match="--camaudit-weights does not apply"):
        load_detector(str(saved), weights=str(saved), device="cpu")


def test_a_broken_ultralytics_checkpoint_names_the_file(saved, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(saved.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match=rf"{truncated}.*corrupt or not a checkpoint of a known family"):
        load_detector(str(truncated), device="cpu")
    missing_tensors = tmp_path / "missing.pt"  # its pickle still names ultralytics' classes
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(missing_tensors, "w") as dst:
        for item in src.infolist():
            if "/data/" not in item.filename:
                dst.writestr(item, src.read(item.filename))
    with pytest.raises(ModelLoadError, match=rf"cannot load the ultralytics checkpoint {missing_tensors}"):
        load_detector(str(missing_tensors), device="cpu")


INNER = f"""
def test_audit(camaudit):
    case = camaudit.audit({str(SCENE)!r})
    assert case.detector.family.name == "ultralytics-yolo"
    tri = case.assert_detected("triangle", [116.9, 18.9, 140.5, 44.2])
    case.assert_cam_mass(tri, at_least=0.3, method="eigengradcam")
    case.assert_survives_without_context(tri, max_drop=0.5)
"""


@pytest.mark.slow
def test_pytest_run_with_the_zoo_yolo(pytester):
    pytester.makepyfile(INNER)
    pytester.runpytest("--camaudit-model=shapes-yolo", "-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.slow
def test_pytest_run_with_a_conftest_returning_a_yolo_object(pytester, saved):
    pytester.makeconftest(
        f"""
        import pytest
        from ultralytics import YOLO

        @pytest.fixture(scope="session")
        def camaudit_detector():
            return YOLO({str(saved)!r})  # the YOLO object itself: the plugin explains its network
        """
    )
    pytester.makepyfile(INNER)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
