"""The plugin's fixtures. Override any of them in a ``conftest.py`` to plug in your own model.

* ``camaudit_detector`` (session): the :class:`~pytest_camaudit.detectors.base.Detector` under audit,
  built from ``--camaudit-model`` / ``--camaudit-weights`` / ``--camaudit-device``. Override it to
  return your own ``Detector.wrap(model, class_names=[...])`` (a bare ``nn.Module`` is wrapped).
* ``camaudit_cam_engine`` (session): the :class:`~pytest_camaudit.engine.engine.CamEngine`.
* ``camaudit`` (function): the :class:`~pytest_camaudit.audit.auditor.Auditor` a test uses.

Heavy libraries are imported inside the fixtures, never when pytest loads the plugin.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .heap import freeze_long_lived, give_back_memory, keep_freed_blocks
from .keys import AUDITOR, SETTINGS

if TYPE_CHECKING:
    from ..audit.auditor import Auditor
    from ..detectors.base import Detector
    from ..engine.engine import CamEngine


@pytest.fixture(scope="session")
def camaudit_detector(pytestconfig: pytest.Config) -> Detector:
    """The detector under audit, loaded once per session, eval mode, on the chosen device."""
    from ..detectors.loading import load_detector
    from ..errors import ModelLoadError

    settings = pytestconfig.stash[SETTINGS]
    try:
        offline = settings.offline or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        return load_detector(settings.model, settings.weights, settings.device, offline=offline)
    except ModelLoadError as exc:
        pytest.fail(f"camaudit could not load the detector: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def camaudit_cam_engine(camaudit_detector: Any, pytestconfig: pytest.Config) -> CamEngine:
    """The session's CAM engine (one forward per image, cached by image content)."""
    from ..detectors.base import Detector
    from ..engine.engine import CamEngine

    detector = camaudit_detector if isinstance(camaudit_detector, Detector) else Detector.wrap(camaudit_detector)
    share_cores_between_workers()
    settings = pytestconfig.stash[SETTINGS]
    engine = CamEngine(detector, settings.method, batch_size=settings.batch_size)
    freeze_long_lived()  # the modules, the model and the collected tests live all session: out of the GC's walks
    keep_freed_blocks()  # one forward's freed buffers serve the next (glibc)
    return engine


def share_cores_between_workers() -> int | None:
    """Under pytest-xdist, hold each worker's torch to its share of the CPU cores.

    torch starts one thread per core in every process, so ``-n 2`` on 2 cores ran 4 threads on
    2 cores: the example suite took 52 s instead of 8 s. Unless the user chose a count
    (``OMP_NUM_THREADS``), each of ``N`` workers gets ``cores // N`` threads (at least 1).

    Returns:
        The thread count set, or ``None`` when nothing was changed.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers < 2 or "OMP_NUM_THREADS" in os.environ:
        return None
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // workers)
    torch.set_num_threads(threads)
    return threads


@pytest.fixture
def camaudit(camaudit_cam_engine: CamEngine, request: pytest.FixtureRequest) -> Iterator[Auditor]:
    """The per-test auditor: ``case = camaudit.audit(image)``, then ``case.assert_…``."""
    from ..audit.auditor import Auditor

    auditor = Auditor(camaudit_cam_engine, request.config.stash[SETTINGS], request.node.nodeid)
    request.node.stash[AUDITOR] = auditor
    yield auditor
    # the test's records were taken in pytest_runtest_makereport; a finished test keeps no
    # analysis, activation or map (the engine's LRU still shares each image's forward)
    auditor.release()
    del request.node.stash[AUDITOR]
    give_back_memory()  # freed activations and autograd buffers go back to the OS (glibc)
