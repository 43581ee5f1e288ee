"""The engine: the one capturing forward per image, its hooks, and the per-image analysis.

* :mod:`.engine` — :class:`~.engine.CamEngine`: runs the detector with the hooks its family asks
  for, caches one :class:`~.analysis.ImageAnalysis` per image content (LRU).
* :mod:`.analysis` — what the forward left behind plus the per-image memos (maps, gradients,
  D-RISE mask runs) the CAM methods share.
* :mod:`.alignment` — feature cells ↔ original pixels through resize, padding and letterbox offsets.
* :mod:`.images` — whatever a user passes as an image → ``uint8 [H, W, 3]``, or a clear error.
* :mod:`.context` — the context check's re-score with everything outside a box filled.
* :mod:`.hooks` — hooks registered for one forward and removed in ``finally``.

May import :mod:`pytest_camaudit.detectors` and the bottom modules (``datatypes``, ``errors``,
``metrics``…). Knows no CAM method: the methods layer computes maps from an analysis.
"""
