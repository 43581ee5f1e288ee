"""Auditing inside a test: the auditor, the audited case, and every assertion on it.

* :mod:`.auditor` — :class:`~.auditor.Auditor` (the ``camaudit`` fixture's object);
* :mod:`.case` — :class:`~.case.AuditCase`: one image, its maps, its verdicts, its plain records;
* :mod:`.verdicts` — the record-and-raise helpers every assertion ends in (`verdict`, and `fail`, typed `NoReturn`), and its validators;
* :mod:`.assertions` — detected, CAM mass, survives without context;
* :mod:`.metric_assertions` — the metric pack (pointing game, ODI, deletion / insertion AUC…);
* :mod:`.sanity` — the model and target randomisation checks;
* :mod:`.perturbation` — deletion and insertion curves.

May import :mod:`pytest_camaudit.methods`, :mod:`pytest_camaudit.engine`,
:mod:`pytest_camaudit.detectors` and the bottom modules. Draws nothing: a case hands the report a
plain :class:`~pytest_camaudit.datatypes.CaseDrawing`.
"""
