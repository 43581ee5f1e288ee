"""transformers' detectors: the shared machinery and one module per DETR-style family.

* :mod:`.runtime` — the one offline import of ``transformers``, labels, images back to ``uint8``;
* :mod:`.family` — :class:`~.family.TransformerFamily` (running through the image processor,
  capture, query rules, the replay of the transformer from the captured maps);
* :mod:`.folders` — :func:`~.folders.hf_detector` and loading a ``save_pretrained`` folder (the
  loader every family here declares);
* :mod:`.detr`, :mod:`.rtdetr` — the families: each declares its ``model_type`` s and classes
  (``HANDLES``) and defines ``FAMILY``.

May import :mod:`pytest_camaudit.detectors`' shared contract and the bottom modules; ``transformers``
itself only inside functions (the ``hf`` extra). Importing this package is light.
"""
