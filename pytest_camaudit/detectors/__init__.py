"""Detectors: what the plugin knows about a model and how ``--camaudit-model`` builds one.

Organised by ecosystem, with the shared contract beside the ecosystems:

* the contract — :mod:`.base` (:class:`~.base.Detector`: model, class names, target layer,
  identity; frozen), :mod:`.family` (:class:`~.family.Family`, the per-architecture knowledge: how
  to run the model, what to capture while it runs, its preprocessing geometry, how one detection
  is re-scored or differentiated from the features; :class:`~.family.Capture`, the per-image state),
  :mod:`.handles` (:class:`~.handles.Handles`, what a family declares it handles, torch-free),
  :mod:`.registry` (families found from their declarations and the ``pytest_camaudit.families``
  entry points), :mod:`.specs` (``--camaudit-model``'s grammar, torch-free), :mod:`.loading`
  (``--camaudit-model`` → a :class:`~.base.Detector`), :mod:`.receptive`, :mod:`.statedict`;
* :mod:`.torchvision` — R-CNN, RetinaNet, FCOS, SSD and the torchvision builders;
* :mod:`.ultralytics` — the ultralytics runtime and the YOLO family;
* :mod:`.transformers` — the shared transformers machinery and the DETR and RT-DETR families.

A family is one module in its ecosystem's folder (``HANDLES`` + its :class:`~.family.Family`
subclass + ``FAMILY``); nothing else in the package names it. The modules at this level named
after a family (``rcnn``, ``huggingface``, ``detr``…) are light forwarding modules for old imports.

May import :mod:`pytest_camaudit.datatypes`, ``errors``, ``fileio`` and ``validation``; not the zoo,
which sits above and registers its detectors like any family. Nothing here knows about CAMs, the
engine or pytest.
"""
