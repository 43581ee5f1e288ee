"""Data-driven audits: a COCO file becomes one case per image, checked, gated and compared with a baseline.

* :mod:`.entries` — COCO annotation file → :class:`~.entries.CaseEntry` per image (problems become
  failing entries, never a crash), per-class thresholds;
* :mod:`.checks` — every annotated object of a case: detected, CAM mass, baseline;
* :mod:`.baseline` — what a previous model produced per case, and the comparison with it;
* :mod:`.gates` — the per-class dataset gates over object rows (plain functions);
* :mod:`.thresholds` — the small text formats of thresholds, gates and tolerances (import-light).

May import :mod:`pytest_camaudit.audit` and everything below it. Knows nothing of pytest: the
plugin's :mod:`~pytest_camaudit.plugin.cases` and :mod:`~pytest_camaudit.plugin.gates` wire it in.
"""
