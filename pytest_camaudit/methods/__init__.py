"""CAM methods: each computes a map on the original image's pixels from an engine analysis.

* :mod:`.registry` — the registry (names, per-box or not, gradients or not) and
  :func:`~.registry.cam_for`; import-light.
* :mod:`.eigencam` and :mod:`.pca` — EigenCAM and EigenGradCAM (principal components, oriented);
* :mod:`.gradient` — GradCAM, GradCAM++, XGradCAM, HiResCAM, LayerCAM on grad-cam's own weighting;
* :mod:`.ablation` — AblationCAM through the family's box-local re-score;
* :mod:`.drise` — D-RISE, black box;
* :mod:`.maps` — the final clip-and-scale every method shares.

May import :mod:`pytest_camaudit.engine`, :mod:`pytest_camaudit.detectors` and the bottom modules.
"""

from __future__ import annotations

from .registry import CamMethod, ablation_method, cam_for, canonical_name, drise_method, get_method, method_names, register

__all__ = ["CamMethod", "ablation_method", "cam_for", "canonical_name", "drise_method", "get_method", "method_names", "register"]
