"""The evaluation set as data: one test per image, dataset-level gates, a baseline of the model in production.

``@pytest.mark.camaudit_cases`` turns ``data/annotations.json`` into one test per image (its id
names the image); ``camaudit_entry.check`` checks every annotated object (detected at the score
threshold, CAM mass measured inside its box) and, with ``--camaudit-baseline``, compares the case
with what the production model produced. The gates below hold across all images of the run; a
failed gate fails the run (exit status 1) even when every image passes on its own.

    pytest example_suite/test_dataset.py                                        # clean model: passes
    pytest example_suite --camaudit-model shapes-shortcut \\
           --camaudit-baseline example_suite/baselines/shapes                   # the twin: fails

``baselines/shapes`` was written from the clean model (the "production" one) with::

    pytest example_suite/test_dataset.py --camaudit-baseline example_suite/baselines/shapes --camaudit-update-baseline

Thresholds were set from the clean model's numbers (``python example_suite/calibrate_dataset.py``
prints them for any model): it detects every object and its lowest box mass is 0.64 (EigenGradCAM,
per box, pytest.ini). The baseline's tolerances are the plugin's defaults
(``--camaudit-baseline-tolerance``), set so that the clean model retrained with another seed
fails only a few images.

The YOLOs run with ``--camaudit-method=layercam`` (see ``test_shapes_audit.py``) and the same
gates, and without the baseline (it holds the Faster R-CNN's maps): the clean ``shapes-yolo``
detects every object, its lowest box mass is 0.56 and at most 0.02 of a triangle's map lies on
the tags; its twin detects 9 of 13 triangles (the recall gate fails), their median box mass is
0.39 and up to 0.15 of a map lies on the tags
(``python example_suite/calibrate_dataset.py --model shapes-yolo --model shapes-yolo-shortcut
--method layercam --baseline none``).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.camaudit_cases(
    "data/annotations.json",
    gate_recall=0.9,  # per class: at least 90 % of the objects detected (score >= the run's threshold, IoU >= 0.5)
    gate_mass=(0.5, 0.9),  # per class: at least 90 % of the objects keep >= 0.5 of their map inside their box
)

MAX_TAG_MASS = 0.1
"""Share of a triangle's map allowed on the spurious tags (``cue_boxes`` of the image entry)."""


def test_annotated_scene(camaudit, camaudit_entry):
    case = camaudit_entry.audit(camaudit)
    rows = camaudit_entry.check(case)  # every object; feeds the gates and the baseline comparison
    tags = camaudit_entry.info.get("cue_boxes") or []
    for row in rows:
        if tags and row["label"] == "triangle" and row["detected"]:
            case.assert_forbidden_mass(tags, at_most=MAX_TAG_MASS, explain=case.detections[row["detection"]], what="the tags")
