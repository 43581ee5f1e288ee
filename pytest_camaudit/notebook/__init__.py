"""Exploring outside pytest: ``explore(image)`` in a notebook, cases and maps that show themselves, a test from what was seen.

* :mod:`.api` — :func:`~.api.explore` (the detector cached per model, loaded as ``--camaudit-model``
  loads it) and :func:`~.api.release_detectors`.
* :mod:`.shown` — :class:`~.shown.NotebookCase` (an ``AuditCase`` with ``_repr_html_`` /
  ``_repr_png_``, ``release()``, ``test_source()``) and :class:`~.shown.ShownMap`.
* :mod:`.testgen` — the source of a pytest test whose thresholds are a case's measured values.
* :mod:`.display` — :class:`~.display.GateSummary` and IPython formatters for the plain types.

The top layer beside ``plugin``: it may import every layer below (``report`` to draw, ``audit``,
``detectors``…) and nothing imports it. IPython is never imported here: formatters are registered
only when IPython is already running.
"""
