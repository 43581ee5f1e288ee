"""Detectors: what the plugin knows about a model and how ``--camaudit-model`` builds one.

* :mod:`.base` — :class:`~.base.Detector` (model, class names, target layer, identity) and
  :class:`~.base.Family`, the per-architecture knowledge: how to run the model, what to capture
  while it runs, its preprocessing geometry, how one detection is re-scored from the features.
* One file per family: :mod:`.rcnn` (Faster / Mask / Keypoint R-CNN and the embedded ``shapes``
  models), :mod:`.retinanet`, :mod:`.fcos`, :mod:`.ssd` (sharing :mod:`.onestage`).
* Sources of models: :mod:`.torchvision` (builders and weights), :mod:`.zoo` (embedded checkpoints),
  :mod:`.loading` (``--camaudit-model`` dispatch, ``package.module:callable``), :mod:`.specs` (the
  option's grammar, import-light), :mod:`.registry` (which family and loader applies).

May import: :mod:`pytest_camaudit.datatypes`, ``errors``, ``fileio``, ``validation`` and
:mod:`pytest_camaudit.zoo`. Nothing here knows about CAMs, the engine or pytest.
"""
