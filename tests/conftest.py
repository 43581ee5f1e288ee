"""Shared fixtures of the project's own tests: the shipped detector and small probe models."""

from __future__ import annotations

# pytester's in-process runs restore sys.modules afterwards; a C extension such as torch that is
# first imported inside such a run would be imported a second time by the next run and crash the
# interpreter. Importing the heavy stack here puts it in the snapshot that is kept.
import cv2  # noqa: F401
import pytest
import pytorch_grad_cam  # noqa: F401
import torch
import torchvision  # noqa: F401

import pytest_camaudit.audit.auditor
import pytest_camaudit.detectors.loading
import pytest_camaudit.detectors.torchvision.rcnn
import pytest_camaudit.engine.engine
import pytest_camaudit.methods.ablation
import pytest_camaudit.methods.drise
import pytest_camaudit.methods.gradient
import pytest_camaudit.report.figures
import pytest_camaudit.report.html  # noqa: F401


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's ``pytester``, whose inner runs (in process and in subprocesses) keep their tests' order.

    pytest-randomly (the ``test`` extra) shuffles every run it is loaded in, each with its own
    random seed: an inner suite whose output is compared across runs, or split by pytest-split
    (which picks its group *after* the shuffle), would differ from run to run. The outer run keeps
    its shuffle; ``PYTEST_ADDOPTS`` (which ``pytester`` clears when it starts) reaches every inner run,
    xdist workers and ``runpytest_subprocess`` included.
    """
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    return pytester


@pytest.fixture
def pillow_open_patched_like_ultralytics(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PIL.Image.open`` replaced as importing ultralytics replaces it (``ultralytics.utils.patches``):
    on a file Pillow cannot identify it imports the HEIF plugin ``pi_heif``, absent here."""
    from PIL import Image

    original = Image.open

    def image_open(filename, *args, **kwargs):
        try:
            return original(filename, *args, **kwargs)
        except Image.UnidentifiedImageError:
            import pi_heif_absent  # noqa: F401  # ModuleNotFoundError, as the missing pi_heif raises

    monkeypatch.setattr(Image, "open", image_open)


@pytest.fixture(scope="session")
def shapes_detector():
    """The shipped clean shapes detector wrapped for the engine (CPU)."""
    from pytest_camaudit.detectors.base import Detector
    from pytest_camaudit.zoo.model import load_zoo_detector

    model, classes, meta = load_zoo_detector("shapes")
    return Detector.wrap(model, classes, name="shapes", device="cpu", meta=meta)


@pytest.fixture(scope="session")
def shortcut_detector():
    from pytest_camaudit.detectors.base import Detector
    from pytest_camaudit.zoo.model import load_zoo_detector

    model, classes, meta = load_zoo_detector("shapes-shortcut")
    return Detector.wrap(model, classes, name="shapes-shortcut", device="cpu", meta=meta)


@pytest.fixture
def shapes_engine(shapes_detector):
    from pytest_camaudit.engine.engine import CamEngine

    return CamEngine(shapes_detector, "eigencam")


@pytest.fixture(scope="session")
def scene_dir(tmp_path_factory):
    """Six held-out clean scenes as PNG + COCO annotations (seeds 20000000..20000005)."""
    from pytest_camaudit.zoo.dataset import write_coco_dataset

    out = tmp_path_factory.mktemp("scenes")
    write_coco_dataset(out, list(range(20_000_000, 20_000_006)), "shapes")
    return out


@pytest.fixture
def one_torch_thread(monkeypatch):
    """Every process of the test runs torch on one thread: this one, and xdist workers and gateways started from it.

    Runs compared number for number must sum floats in the same order. Under ``-n 2`` each worker
    gets ``cores // 2`` threads and one process gets all the cores, and on 2 cores that 1-vs-2
    flips a rounded digit now and then (``OMP_NUM_THREADS`` is the user's choice the plugin keeps).
    Request it before any fixture that starts a process.
    """
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
