"""transformers' detectors: the shared machinery and one module per DETR-style family.

* :mod:`.runtime` — the one offline import of ``transformers``, labels, images back to ``uint8``;
* :mod:`.family` — :class:`~.family.TransformerFamily` (running through the image processor,
  capture, query rules, the replay of the transformer from the captured maps);
* :mod:`.folders` — :func:`~.folders.hf_detector` and loading a ``save_pretrained`` folder (the
  loader every family here declares);
* :mod:`.shapes` — the two replay shapes (encoder-decoder, decoder-only) the families build on;
* one module per type — :mod:`.detr`, :mod:`.table_transformer`, :mod:`.conditional_detr`,
  :mod:`.dab_detr`, :mod:`.deformable_detr`, :mod:`.rtdetr`, :mod:`.rtdetr_v2`, :mod:`.d_fine`,
  :mod:`.deimv2`, :mod:`.rf_detr`, :mod:`.lw_detr`, :mod:`.yolos`, :mod:`.pp_doclayout_v2` / ``_v3`` / ``_v4``:
  each declares its ``model_type`` s and classes (``HANDLES``) and defines ``FAMILY``.

May import :mod:`pytest_camaudit.detectors`' shared contract and the bottom modules; ``transformers``
itself only inside functions (the ``hf`` extra). Importing this package is light.
"""
