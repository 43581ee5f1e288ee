"""ultralytics' detectors: the runtime (its predictor without ``predict()``, offline) and one module per family.

* :mod:`.runtime` — the one offline import of ``ultralytics`` and its predictor's letterbox and
  post-processing (shared with the zoo's YOLO detectors);
* :mod:`.head` — a ``Detect`` head seen from one detection (anchor point, window, class logit);
* :mod:`.yolo` — the YOLO family (YOLOv8, YOLO11, YOLO26 detection models), ``yolo_detector``
  and the loading of ultralytics checkpoints and architecture files.

May import :mod:`pytest_camaudit.detectors`' shared contract and the bottom modules; ``ultralytics``
itself only inside functions (AGPL-3.0, the ``yolo`` extra). Importing this package is light: the
names the old module ``pytest_camaudit.detectors.ultralytics`` had (``yolo_detector``,
``UltralyticsFamily``, ``import_ultralytics``…) load :mod:`.yolo` on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..moved import forward

if TYPE_CHECKING:
    from .yolo import (
        DEFAULT_CONF,
        DEFAULT_IMGSZ,
        FAMILY,
        HEADS,
        INSTALL_HINT,
        UltralyticsFamily,
        detection_model,
        import_ultralytics,
        yolo_detector,
    )

__all__ = ["DEFAULT_CONF", "DEFAULT_IMGSZ", "FAMILY", "HEADS", "INSTALL_HINT", "UltralyticsFamily", "detection_model",
           "import_ultralytics", "yolo_detector"]

__getattr__ = forward(__name__, f"{__name__}.yolo")
