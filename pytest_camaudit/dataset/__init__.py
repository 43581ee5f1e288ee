"""Data-driven audits: a dataset (COCO, ultralytics YAML, Pascal VOC) becomes one case per image, checked, gated and compared with a baseline.

* :mod:`.formats` — one reader per dataset format (COCO JSON, ultralytics YAML, Pascal VOC root), the same records;
* :mod:`.entries` — a dataset → :class:`~.entries.CaseEntry` per image (problems become
  failing entries, never a crash), per-class thresholds;
* :mod:`.checks` — every annotated object of a case: detected, CAM mass, baseline;
* :mod:`.baseline` — what a previous model produced per case, and the comparison with it;
* :mod:`.gates` — the per-class dataset gates over object rows (plain functions);
* :mod:`.thresholds`, :mod:`.names` — the small text formats of thresholds, gates, tolerances and class-name maps (import-light).

May import :mod:`pytest_camaudit.audit` and everything below it. Knows nothing of pytest: the
plugin's :mod:`~pytest_camaudit.plugin.cases` and :mod:`~pytest_camaudit.plugin.gates` wire it in.
"""
