"""Command-line options, their ini twins, validation, and the resolved :class:`Settings`.

Every option is a ``--camaudit-*`` flag with an ini key of the same name (dashes → underscores),
so a project sets it in ``pyproject.toml`` under ``[tool.pytest.ini_options]``. The command line
wins over the ini file. Values stay plain strings / numbers so that pytest-xdist can carry them.
Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Any, cast

import pytest

from ..dataset.names import parse_name_map
from ..dataset.thresholds import ParsedSettings, mass_region, parse_class_thresholds, parse_gate_mass, parse_tolerances
from ..detectors.specs import spec_kind
from ..methods.registry import canonical_name, method_names
from ..records import SCORE_THRESHOLD, VerdictSettings
from ..runs.layout import VERDICT_SETTINGS
from ..validation import number_in, whole_number

DEVICES = ("auto", "cpu", "cuda")


def parse_model(value: str) -> str:
    """A ``--camaudit-model`` value (see :mod:`pytest_camaudit.detectors.specs` for the grammar)."""
    value = value.strip()
    try:
        spec_kind(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def parse_method(value: str) -> str:
    """A registered CAM method name, case-insensitive (``GradCAM++`` → ``gradcam++``)."""
    name = canonical_name(value)
    if name in method_names():
        return name
    raise argparse.ArgumentTypeError(f"unknown CAM method {value!r}; expected one of {', '.join(method_names())}")


def parse_device(value: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    v = value.strip().lower()
    if v in DEVICES or re.fullmatch(r"cuda:\d+", v):
        return v
    raise argparse.ArgumentTypeError(f"unknown device {value!r}; expected one of auto, cpu, cuda, cuda:N")


def parse_probability(value: str) -> float:
    """A finite number in [0, 1]."""
    try:
        return number_in(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_batch_size(value: str) -> int | None:
    """``auto`` (``None``) or a whole number ≥ 1."""
    if str(value).strip().lower() == "auto":
        return None
    try:
        return whole_number(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a whole number >= 1, got {value!r}") from None


def parse_path(value: str) -> str:
    """A non-empty path string."""
    if not value.strip():
        raise argparse.ArgumentTypeError("expected a file path, got an empty string")
    return value


def parse_split(value: str) -> str:
    """A split's name: a key of the dataset YAML (``val``, ``test``…) or a VOC image set (``ImageSets/Main/<name>.txt``)."""
    v = value.strip()
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", v):
        return v
    raise argparse.ArgumentTypeError(f"expected a split name such as val, test or trainval, got {value!r}")


def parse_bool(value: str | bool) -> bool:
    """``true/false``, ``yes/no``, ``1/0``, ``on/off``."""
    if isinstance(value, bool):
        return value
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


@dataclass(frozen=True)
class OptionSpec:
    """One option: ``--camaudit-<name>`` on the command line, ``camaudit_<name>`` in the ini file; its
    default is the :class:`Settings` field's."""

    name: str
    help: str
    parse: Callable[[str], Any]
    flag: bool = False  # a boolean switch: ``--camaudit-report-all`` with no value

    @property
    def cli(self) -> str:
        return f"--camaudit-{self.name}"

    @property
    def dest(self) -> str:
        return f"camaudit_{self.name.replace('-', '_')}"

    @property
    def ini(self) -> str:
        return self.dest


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("report", "write an HTML audit report to this path", parse_path),
    OptionSpec("report-all", "also put passing audited cases in the report", parse_bool, flag=True),
    OptionSpec(
        "model",
        "detector to audit: an embedded detector (shapes by default), a torchvision builder name, "
        "package.module:callable, an architecture file (yolo11n.yaml), a checkpoint (.pt) or a save_pretrained folder",
        parse_model,
    ),
    OptionSpec(
        "weights",
        "weights for --camaudit-model: a state-dict file, or for torchvision builders a weights "
        "enum name such as COCO_V1 / DEFAULT (downloaded once into the torch hub cache unless --camaudit-offline)",
        parse_path,
    ),
    OptionSpec("offline", "never download weights; they must be on disk already (also when HF_HUB_OFFLINE=1)",
               parse_bool, flag=True),
    OptionSpec("method", f"CAM method: {', '.join(method_names())} (default eigencam)", parse_method),
    OptionSpec("device", "auto (cuda when available), cpu, cuda or cuda:N", parse_device),
    OptionSpec("score-threshold", f"minimum detection score, 0..1 (default {SCORE_THRESHOLD})", parse_probability),
    OptionSpec("batch-size", "images per detector call for the extra forwards of one image: context re-scores, D-RISE masks, "
               "deletion / insertion curves: auto (default: 8 on a GPU; on a CPU as many as fit 512x512 pixels) or a number",
               parse_batch_size),
    OptionSpec("json", "write the run's record as JSON (per case: detections, metrics, verdicts, figures; gate inputs; the run's "
               "identity) to this path; shards merge with `python -m pytest_camaudit merge`", parse_path),
    OptionSpec("markdown", "write a Markdown summary (verdict, gates, per-class table, failing cases; < 64 KB) to this path, "
               "e.g. $GITHUB_STEP_SUMMARY", parse_path),
    OptionSpec("defer-gates", "record the dataset gates' inputs but judge them only in the merge of all shards "
               "(default: on under pytest-split --splits N > 1)", parse_bool, flag=True),
    # -- data-driven cases, dataset-level gates, baselines (pytest_camaudit.dataset) --
    OptionSpec("cases", "a dataset: a COCO .json file, an ultralytics dataset .yaml or a Pascal VOC root folder; one audit test per "
               "image (see also @pytest.mark.camaudit_cases)", parse_path),
    OptionSpec("cases-images", "COCO files: folder of the images (default: images/ beside the file, else its folder)", parse_path),
    OptionSpec("cases-split", "the dataset YAML's split or the VOC image set to audit (default val; a COCO file is one split)",
               parse_split),
    OptionSpec("cases-names", "map dataset class names to the detector's, e.g. 'aeroplane=airplane, tvmonitor=tv' (NAME= leaves a "
               "class out)", parse_name_map),
    OptionSpec("min-mass", "per-case CAM mass each annotated object must have inside its box, 0..1 (default 0: measured only)",
               parse_probability),
    OptionSpec("mass-region", "where a data-driven object's CAM mass is judged (--camaudit-min-mass, the mass gate, baselines): box "
               "(default), mask (its annotated outline: COCO segmentation, YOLO polygon) or auto (the outline where it has one)",
               mass_region),
    OptionSpec("class-thresholds", "per-class overrides, e.g. 'triangle: score=0.6 mass=0.3 gate-mass=0.4:0.9; star: iou=0.4'",
               parse_class_thresholds),
    OptionSpec("gate-recall", "dataset gate: every class's recall at the score threshold must be >= this, 0..1", parse_probability),
    OptionSpec("gate-mass", "dataset gate MASS:RATE: a share >= RATE of each class's objects has CAM mass >= MASS (e.g. 0.4:0.9)",
               parse_gate_mass),
    OptionSpec("baseline", "folder of a previous model's baseline: compare every data-driven case with it", parse_path),
    OptionSpec("update-baseline", "write the --camaudit-baseline folder from this run instead of comparing", parse_bool, flag=True),
    OptionSpec("baseline-tolerance", "e.g. 'mass-drop=0.25 rank=0.5 top-iou=0.3 top=0.1 recall-drop=0.05' (these are the defaults; "
               "atlas-drift=X also fails a class whose evidence atlas moved by more than X)", parse_tolerances),
    # -- discovery (pytest_camaudit.discovery) --
    OptionSpec("discover", "re-score every audited object with each region around its box filled and report the classes whose "
               "detections rest on something beside their boxes (about 10 extra forwards per object)", parse_bool, flag=True),
    OptionSpec("gate-discovery", "fail the run when --camaudit-discover flags a class (implies --camaudit-discover)", parse_bool, flag=True),
)


@dataclass(frozen=True)
class Settings:
    """The resolved options of a run (plain values; safe to send to xdist workers)."""

    report: str | None = None
    report_all: bool = False
    model: str = "shapes"
    weights: str | None = None
    offline: bool = False
    method: str = "eigencam"
    device: str = "auto"
    score_threshold: float = SCORE_THRESHOLD
    batch_size: int | None = None
    """None: automatic (see ``CamEngine.batch_for``)."""
    json: str | None = None
    markdown: str | None = None
    defer_gates: bool | None = None
    """None: decided by the run (on under pytest-split with ``--splits`` > 1)."""
    cases: str | None = None
    cases_images: str | None = None
    cases_split: str = "val"
    cases_names: str | None = None
    min_mass: float = 0.0
    mass_region: str = "box"
    class_thresholds: str | None = None
    gate_recall: float | None = None
    gate_mass: str | None = None
    baseline: str | None = None
    update_baseline: bool = False
    baseline_tolerance: str | None = None
    discover: bool = False
    gate_discovery: bool = False
    """Implies ``discover`` (:func:`resolve_settings` sets both)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def keeps_evidence(self) -> bool:
        """Whether an output of the run reads the case records' evidence (map crops, profiles): the
        report, the run file (a merge discovers from it), discovery, or a baseline's atlases."""
        return bool(self.report or self.json or self.discover or self.baseline)

    def verdict_settings(self) -> VerdictSettings:
        """The settings that can change a verdict (:data:`~pytest_camaudit.runs.layout.VERDICT_SETTINGS`), as given:
        what the run file keeps under ``run.settings`` and discovery reads."""
        return cast(VerdictSettings, {k: getattr(self, k) for k in VERDICT_SETTINGS})

    @cached_property
    def parsed(self) -> ParsedSettings:
        """``gate_mass``, ``baseline_tolerance`` and ``class_thresholds`` as typed values, parsed once."""
        return ParsedSettings.parse(self.gate_mass, self.baseline_tolerance, self.class_thresholds)


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Settings)}


def add_options(parser: pytest.Parser) -> None:
    """Register every option in a ``camaudit`` group plus its ini twin."""
    group = parser.getgroup("camaudit", "CAM audits of object detectors (pytest-camaudit)")
    for spec in OPTIONS:
        if spec.flag:
            group.addoption(spec.cli, action="store_const", const=True, default=None, dest=spec.dest, help=spec.help)
        else:
            group.addoption(spec.cli, action="store", type=spec.parse, default=None, dest=spec.dest, help=spec.help)
        parser.addini(spec.ini, f"{spec.help} (same as {spec.cli})", default=None)


def resolve_settings(config: pytest.Config) -> Settings:
    """Command line first, then the ini file, then the default; a bad ini value is a UsageError."""
    values: dict[str, Any] = {}
    for spec in OPTIONS:
        value = config.getoption(spec.dest, default=None)
        if value is None:
            raw = config.getini(spec.ini)
            if raw not in (None, "", []):
                try:
                    value = spec.parse(raw if isinstance(raw, str) else str(raw))
                except argparse.ArgumentTypeError as exc:
                    raise pytest.UsageError(f"ini option {spec.ini} = {raw!r}: {exc}") from None
        name = spec.dest.removeprefix("camaudit_")
        values[name] = _DEFAULTS[name] if value is None else value
    values["discover"] = bool(values["discover"] or values["gate_discovery"])
    return Settings(**values)
