"""The plugin's fixtures. Override any of them in a ``conftest.py`` to plug in your own model.

* ``camaudit_detector`` (session): the :class:`~pytest_camaudit.detector.Detector` under audit,
  built from ``--camaudit-model`` / ``--camaudit-weights`` / ``--camaudit-device``. Override it to
  return your own ``Detector.wrap(model, class_names=[...])`` (a bare ``nn.Module`` is wrapped).
* ``camaudit_cam_engine`` (session): the :class:`~pytest_camaudit.engine.CamEngine`.
* ``camaudit`` (function): the :class:`~pytest_camaudit.auditor.Auditor` a test uses.

Heavy libraries are imported inside the fixtures, never when pytest loads the plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .keys import AUDITOR, SETTINGS

if TYPE_CHECKING:
    from .auditor import Auditor
    from .detector import Detector
    from .engine import CamEngine


@pytest.fixture(scope="session")
def camaudit_detector(pytestconfig: pytest.Config) -> Detector:
    """The detector under audit, loaded once per session, eval mode, on the chosen device."""
    from .detector import load_detector
    from .errors import ModelLoadError

    try:
        return load_detector(pytestconfig.stash[SETTINGS])
    except ModelLoadError as exc:
        pytest.fail(f"camaudit could not load the detector: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def camaudit_cam_engine(camaudit_detector: Any, pytestconfig: pytest.Config) -> CamEngine:
    """The session's CAM engine (one forward per image, cached by image content)."""
    from .detector import Detector
    from .engine import CamEngine

    detector = camaudit_detector if isinstance(camaudit_detector, Detector) else Detector.wrap(camaudit_detector)
    return CamEngine(detector, pytestconfig.stash[SETTINGS].method)


@pytest.fixture
def camaudit(camaudit_cam_engine: CamEngine, request: pytest.FixtureRequest) -> Iterator[Auditor]:
    """The per-test auditor: ``case = camaudit.audit(image)``, then ``case.assert_…``."""
    from .auditor import Auditor

    auditor = Auditor(camaudit_cam_engine, request.config.stash[SETTINGS], request.node.nodeid)
    request.node.stash[AUDITOR] = auditor
    yield auditor
