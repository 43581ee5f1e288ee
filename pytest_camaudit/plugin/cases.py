"""pytest side of data-driven cases: the ``camaudit_cases`` marker, ``--camaudit-cases``, ``camaudit_entry``.

A dataset is a COCO JSON file, an ultralytics dataset YAML (``split=`` / ``--camaudit-cases-split``
picks its split, default ``val``) or a Pascal VOC root folder (the same option picks its image set);
see :mod:`pytest_camaudit.dataset.formats`. Two ways to get one test per image of a dataset:

* **Your own checks** — mark a test (or a module, with ``pytestmark``) and take ``camaudit_entry``;
  the test runs once per image, its id naming the image. Paths are relative to the test module::

      @pytest.mark.camaudit_cases("data/annotations.json", classes={"triangle": {"mass": 0.3}},
                                  gate_recall=0.9, gate_mass=(0.4, 0.9))
      def test_scene(camaudit, camaudit_entry):
          case = camaudit_entry.audit(camaudit)   # fails when the file's size differs from the annotation
          camaudit_entry.check(case)              # every object detected, masses, baseline
          ...                                     # anything else, e.g. case.assert_forbidden_mass(...)

* **Built-in checks, no test code** — ``--camaudit-cases=FILE`` (ini ``camaudit_cases``) adds the
  file to what pytest collects; it becomes ``FILE::image[<image file name>]`` items running exactly
  ``camaudit_entry.check(camaudit_entry.audit(camaudit))``. Command-line paths are relative to the
  current folder, ini paths to the ini file's folder.

An entry with problems (see :mod:`pytest_camaudit.dataset.entries`) errors in setup with a message naming
it; the other entries run as usual.
"""

from __future__ import annotations

import os
from argparse import ArgumentTypeError
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..dataset.entries import CaseEntry, ThresholdResolver, Thresholds, load_entries
from ..dataset.formats import format_of
from ..dataset.names import name_map
from ..errors import DatasetError

if TYPE_CHECKING:
    from ..dataset.baseline import BaselineSpec
    from .options import Settings

ENTRY = pytest.StashKey[CaseEntry]()
"""``item.stash``: the entry of a ``--camaudit-cases`` item."""

MARKER_HELP = (
    "camaudit_cases(annotations, images=None, *, split, names, score, iou, mass, gate_recall, gate_mass, mass_region, classes): run the test once per "
    "image of a dataset (COCO .json, ultralytics .yaml, Pascal VOC folder); the test takes the `camaudit_entry` fixture (pytest-camaudit)"
)


@pytest.fixture
def camaudit_entry(request: pytest.FixtureRequest) -> CaseEntry:
    """The :class:`~pytest_camaudit.dataset.entries.CaseEntry` (one image of a dataset) this test runs on."""
    entry = getattr(request, "param", None)
    if entry is None:
        entry = request.node.stash.get(ENTRY, None)
    if not isinstance(entry, CaseEntry):
        pytest.fail(
            "the camaudit_entry fixture needs @pytest.mark.camaudit_cases('annotations.json') on the test or its module "
            "(pytestmark = ...); --camaudit-cases alone runs built-in checks and needs no test code",
            pytrace=False,
        )
    if entry.problems:
        pytest.fail(entry.problem_text(), pytrace=False)
    return entry


def _annotated_image(camaudit: Any, camaudit_entry: CaseEntry) -> None:
    """Built-in data-driven case: every annotated object detected, CAM masses, baseline."""
    __tracebackhide__ = True
    camaudit_entry.check(camaudit_entry.audit(camaudit))


class CaseItem(pytest.Function):
    """One image of the ``--camaudit-cases`` dataset; reported at the dataset's file or folder."""

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


def _case_items(node: pytest.Collector) -> list[CaseItem]:
    """One :class:`CaseItem` per entry of the ``--camaudit-cases`` dataset at ``node.path``."""
    plugin: CasesPlugin = node.config.pluginmanager.get_plugin("camaudit-cases")  # type: ignore[assignment]
    try:
        entries = plugin.load(node.path, plugin.images_dir, {})
    except DatasetError as exc:
        raise node.CollectError(str(exc)) from None
    items = []
    for entry in entries:
        item = CaseItem.from_parent(node, name=f"image[{entry.id}]", callobj=_annotated_image)
        item.stash[ENTRY] = entry
        items.append(item)
    return items


class CasesFile(pytest.File):
    """The ``--camaudit-cases`` file (COCO JSON, dataset YAML) as a collector of :class:`CaseItem`."""

    def collect(self) -> Any:
        return _case_items(self)


class CasesDir(pytest.Directory):
    """The ``--camaudit-cases`` folder (a Pascal VOC root) as one collector of :class:`CaseItem`: pytest does not walk it."""

    def collect(self) -> Any:
        return _case_items(self)


def resolve_path(config: pytest.Config, option: str, value: str | None) -> Path | None:
    """A path option as an absolute path: from the command line relative to the invocation folder,
    from the ini file relative to the ini file's folder."""
    if not value:
        return None
    p = Path(value).expanduser()
    if not p.is_absolute():
        from_cli = config.getoption(f"camaudit_{option.replace('-', '_')}", None) is not None
        base = config.invocation_params.dir if from_cli else (config.inipath.parent if config.inipath else config.rootpath)
        p = base / p
    return Path(os.path.normpath(p))


class CasesPlugin:
    """Registered by the plugin's ``pytest_configure`` (on the controller and on every worker)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.cases_path = resolve_path(config, "cases", settings.cases)
        self.images_dir = resolve_path(config, "cases-images", settings.cases_images)
        self.baseline = self._baseline_spec()
        self.defaults = Thresholds(settings.score_threshold, Thresholds.iou, settings.min_mass, settings.gate_recall,
                                   settings.parsed.gate_mass, settings.mass_region)
        self._cache: dict[Any, list[CaseEntry]] = {}

    def _baseline_spec(self) -> BaselineSpec | None:
        s = self.settings
        directory = resolve_path(self.config, "baseline", s.baseline)
        if directory is None:
            if s.update_baseline:
                raise pytest.UsageError("--camaudit-update-baseline needs --camaudit-baseline=DIR: the folder to write the baseline to")
            return None
        from ..dataset.baseline import BaselineSpec

        if not s.update_baseline and not (directory / "manifest.json").is_file():
            raise pytest.UsageError(
                f"--camaudit-baseline={s.baseline}: no baseline in {directory} (manifest.json missing); "
                "write one first with --camaudit-update-baseline"
            )
        return BaselineSpec(str(directory), bool(s.update_baseline), s.parsed.tolerances)

    def load(self, annotations: Path, images: Path | None, marker: dict[str, Any]) -> list[CaseEntry]:
        """The entries of a dataset; ``marker``'s ``split`` and ``names`` win over the options'.

        Raises:
            DatasetError: the dataset cannot be used at all (see :func:`~pytest_camaudit.dataset.entries.load_entries`).
            ValueError, TypeError, argparse.ArgumentTypeError: a malformed marker keyword.
        """
        key = (str(annotations), str(images), repr(sorted(marker.items(), key=lambda kv: kv[0])))
        if key not in self._cache:
            marker = dict(marker)
            split = str(marker.pop("split", None) or self.settings.cases_split)
            names = {**name_map(self.settings.cases_names), **name_map(marker.pop("names", None))}
            resolver = ThresholdResolver(self.defaults, self.settings.parsed.classes, marker)
            self._cache[key] = load_entries(annotations, images, resolver, self.baseline, split=split, names=names)
        return self._cache[key]

    def _is_cases(self, path: Path) -> bool:
        return self.cases_path is not None and Path(os.path.normpath(path)) == self.cases_path

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if self._is_cases(file_path) and file_path.is_file():
            return CasesFile.from_parent(parent, path=file_path)
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collect_directory(self, path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        """The VOC root is one node (before pytest's own ``Dir`` / ``Package``, which would walk it)."""
        if self._is_cases(path):
            return CasesDir.from_parent(parent, path=path)
        return None

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "camaudit_entry" not in metafunc.fixturenames:
            return
        marker = metafunc.definition.get_closest_marker("camaudit_cases")
        if marker is None:
            return  # the fixture explains what is missing
        args = list(marker.args)
        kwargs = dict(marker.kwargs)
        annotations = kwargs.pop("annotations", args.pop(0) if args else None)
        images = kwargs.pop("images", args.pop(0) if args else None)
        if annotations is None or args:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: camaudit_cases takes (annotations, images=None, **thresholds), got {marker.args!r}")
        here = metafunc.definition.path.parent
        ann = Path(os.path.normpath(here / Path(annotations).expanduser()))
        img = Path(os.path.normpath(here / Path(images).expanduser())) if images else None
        try:
            entries = self.load(ann, img, kwargs)
        except (ValueError, TypeError, ArgumentTypeError) as exc:  # a malformed marker or dataset: a collection error
            problem = f"{metafunc.definition.nodeid}: {exc}"
        else:
            problem = ""
        if problem:
            pytest.fail(problem, pytrace=False)
        metafunc.parametrize("camaudit_entry", entries, ids=[e.id for e in entries], indirect=True)


def _check_cases(plugin: CasesPlugin) -> None:
    """A ``--camaudit-cases`` dataset that cannot be used at all is a usage error, before anything runs."""
    path = plugin.cases_path
    assert path is not None
    if not path.exists():
        raise pytest.UsageError(f"--camaudit-cases: {'annotation file ' if path.suffix else ''}{path} does not exist")
    try:
        fmt = format_of(path)
        if plugin.images_dir is not None and fmt.name != "coco":
            raise DatasetError(f"--camaudit-cases-images applies to COCO files only; {fmt.what} names its own images")
        fmt.check(path, plugin.settings.cases_split)
    except DatasetError as exc:
        raise pytest.UsageError(f"--camaudit-cases: {exc}") from None


def configure(config: pytest.Config, settings: Settings) -> CasesPlugin:
    """Register the marker and the plugin; add the ``--camaudit-cases`` dataset to what pytest collects."""
    config.addinivalue_line("markers", MARKER_HELP)
    plugin = CasesPlugin(config, settings)
    config.pluginmanager.register(plugin, "camaudit-cases")
    if plugin.cases_path is not None:
        _check_cases(plugin)
        config.args.append(str(plugin.cases_path))
    return plugin
