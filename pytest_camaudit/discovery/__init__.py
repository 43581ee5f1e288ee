"""Discovery: which classes' detections rest on something beside their boxes, found from the run's evidence.

Owns the run-level judgement of ``--camaudit-discover``: every audited object's context profile and
map crop (:class:`~pytest_camaudit.records.EvidenceRecord`, made by :mod:`pytest_camaudit.audit.evidence`
when its test ended) are collected per class, counted once per object (:mod:`.objects`), grouped by
where their evidence sits (:mod:`.groups`, scikit-learn's agglomerative clustering, imported only
when discovery runs), judged against a margin (:mod:`.judge`), averaged into an atlas in box
coordinates that a baseline keeps (:mod:`.atlas`), and summarised as plain data for the terminal,
the report, the Markdown summary and the run file (:mod:`.summary`).

May import: :mod:`pytest_camaudit.dataset` (baseline tolerances and class thresholds) and the
plain-value modules (records, surroundings, fileio, validation). It runs no model and imports no
torch, so a merge of shards discovers exactly as one run.
"""
