"""The registry: declarations read without torch, old import paths, the documented order, installed families.

What each family guarantees is the contract suite's (``tests/detectors/contract``); here, how
families are found: their ``HANDLES``, the ``pytest_camaudit.families`` entry points (a family that
lives outside the package, installed in a temporary folder), and the light modules at the old paths.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_camaudit.detectors import handles, registry
from pytest_camaudit.detectors.family import Family
from pytest_camaudit.detectors.torchvision.rcnn import RcnnFamily

OLD_PATHS = ("rcnn", "retinanet", "fcos", "ssd", "onestage", "huggingface", "hf_capture", "detr", "rtdetr", "yolo_head",
             "torchvision", "ultralytics", "transformers")


def test_option_parsing_and_the_old_module_paths_import_no_heavy_library(tmp_path):
    code = textwrap.dedent(f"""
        import argparse, sys
        for name in {OLD_PATHS!r}:
            __import__("pytest_camaudit.detectors." + name)
        import pytest_camaudit.zoo.yolo_inference
        from pytest_camaudit.plugin.options import parse_model
        for value in ("shapes", "shapes-yolo", "fasterrcnn_resnet50_fpn", "ssd300_vgg16", "yolo11n.yaml", "best.pt",
                      "weights.safetensors", "mypkg.models:build", {str(tmp_path)!r}):
            parse_model(value)
        try:
            parse_model("yolo9000")
        except argparse.ArgumentTypeError as exc:
            assert "unknown model 'yolo9000'; expected an embedded detector (shapes" in str(exc), exc
        heavy = [m for m in ("torch", "torchvision", "cv2", "transformers", "ultralytics") if m in sys.modules]
        print(heavy)
        sys.exit(bool(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_old_import_paths_reach_the_new_homes():
    from pytest_camaudit.detectors.huggingface import HANDLED_TYPES, TransformerFamily, hf_detector, import_transformers
    from pytest_camaudit.detectors.transformers import family, folders, runtime

    assert (hf_detector, TransformerFamily, import_transformers) == (folders.hf_detector, family.TransformerFamily, runtime.import_transformers)
    assert {"detr": "DetrForObjectDetection", "rt_detr": "RTDetrForObjectDetection", "d_fine": "DFineForObjectDetection",
            "yolos": "YolosForObjectDetection"}.items() <= HANDLED_TYPES.items()  # derived from the declarations
    assert len(HANDLED_TYPES) == 15
    import pytest_camaudit.detectors.ultralytics as ul
    from pytest_camaudit.detectors.ultralytics import yolo

    assert ul.yolo_detector is yolo.yolo_detector and ul.UltralyticsFamily is yolo.UltralyticsFamily
    for old, new, name in [("rcnn", "torchvision.rcnn", "RcnnFamily"), ("retinanet", "torchvision.retinanet", "FAMILY"),
                           ("fcos", "torchvision.fcos", "FcosFamily"), ("ssd", "torchvision.ssd", "SsdFamily"),
                           ("onestage", "torchvision.onestage", "radius_of"), ("torchvision", "torchvision.common", "build_torchvision"),
                           ("yolo_head", "ultralytics.head", "trace_cells"), ("hf_capture", "transformers.family", "Replay"),
                           ("detr", "transformers.detr", "DetrFamily"), ("rtdetr", "transformers.rtdetr", "rtdetr_queries")]:
        got = getattr(importlib.import_module(f"pytest_camaudit.detectors.{old}"), name)
        assert got is getattr(importlib.import_module(f"pytest_camaudit.detectors.{new}"), name), (old, name)
    from pytest_camaudit.zoo import yolo_inference

    assert yolo_inference.letterbox is importlib.import_module("pytest_camaudit.detectors.ultralytics.runtime").letterbox
    with pytest.raises(AttributeError, match="relevance_rules moved .* to pytest_camaudit.methods.attention"):
        importlib.import_module("pytest_camaudit.detectors.detr").relevance_rules  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        importlib.import_module("pytest_camaudit.detectors.rcnn").nothing  # noqa: B018


def test_every_declaration_is_read_from_source_and_names_its_family():
    declared = registry.declarations()
    names = [d.handles.name for d in declared]
    assert len(names) == len(set(names)) and {"rcnn", "retinanet", "fcos", "ssd", "ultralytics-yolo", "detr", "rt-detr", "zoo"} <= set(names)
    spec_names = [n for d in declared for n in d.handles.names]
    assert len(spec_names) == len(set(spec_names)), "two declarations claim one --camaudit-model name"
    for d in declared:
        if d.module == "pytest_camaudit.zoo.source":  # its names are the catalog's: it is imported (light), not read
            continue
        path = Path(importlib.util.find_spec(d.module).origin)
        assert handles._static(path.read_text(encoding="utf-8"), "HANDLES") == d.handles, d.module
        if d.handles.family:
            family = d.family()
            assert isinstance(family, Family) and type(family).handles == d.handles and family.name == d.handles.name


def _other_family(tmp_path: Path, monkeypatch, order: int) -> None:
    """An installed family for every torchvision FasterRCNN at ``order``, in a module outside the package."""
    (tmp_path / "otherfam.py").write_text(textwrap.dedent(f"""
        from dataclasses import dataclass
        from pytest_camaudit.detectors.handles import Handles
        from pytest_camaudit.detectors.torchvision.rcnn import RcnnFamily

        HANDLES = Handles(name="other-rcnn", classes=("FasterRCNN",), order={order})

        @dataclass(frozen=True, eq=False)
        class OtherFamily(RcnnFamily):
            name = "other-rcnn"
            handles = HANDLES

        FAMILY = OtherFamily()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "otherfam", raising=False)  # each test writes its own
    found = registry.Declared(handles.read_handles("otherfam"), "otherfam", "entry point other = otherfam:HANDLES")
    monkeypatch.setattr(registry, "_installed", lambda: [found])
    registry.declarations.cache_clear()


@pytest.fixture
def fresh_registry(monkeypatch):
    yield monkeypatch
    monkeypatch.undo()
    registry.declarations.cache_clear()


@dataclasses.dataclass(frozen=True, eq=False)
class MineFamily(RcnnFamily):
    name = "mine"


@pytest.mark.parametrize(("order", "expected"), [(100, "other-rcnn"), (101, "rcnn"), (99, "other-rcnn")])
def test_the_documented_order_decides_when_two_families_claim_a_model(shapes_detector, fresh_registry, tmp_path, order, expected):
    """Lower ``order`` first; at equal order an installed family before a built-in one; a registered one before all."""
    _other_family(tmp_path, fresh_registry, order)
    assert registry.family_for(shapes_detector.model).name == expected
    fresh_registry.setattr(registry, "_EXTRA_FAMILIES", [])
    registry.register_family(MineFamily())
    assert registry.family_for(shapes_detector.model).name == "mine"


TINY_FAMILY = '''
from dataclasses import dataclass

import torch
from torch import nn

from pytest_camaudit.detectors.family import Family
from pytest_camaudit.detectors.torchvision.rcnn import RcnnFamily
from pytest_camaudit.detectors.handles import Handles

HANDLES = Handles(name="tiny", classes=("TinyDetector",), names=("tiny-detector",), loader="load",
                  describe="the tiny detector ({names})")


class TinyDetector(nn.Module):
    """The torchvision protocol: one box whose score reads its backbone's mean."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, images):
        feats = self.backbone(torch.stack(images))
        return [{"boxes": torch.tensor([[10.0, 8.0, 40.0, 30.0]]), "labels": torch.tensor([1]),
                 "scores": torch.sigmoid(f.mean())[None]} for f in feats]


@dataclass(frozen=True, eq=False)
class TinyFamily(Family):
    name = "tiny"
    handles = HANDLES


FAMILY = TinyFamily()


def load(spec, weights, offline):
    from pytest_camaudit import Detector

    torch.manual_seed(0)
    return Detector.wrap(TinyDetector(), ["__background__", "blob"], name=spec)
'''

TINY_TESTS = '''
import numpy as np

def test_audit(camaudit, request):
    case = camaudit.audit(np.full((64, 80, 3), 100, np.uint8), name="grey")
    assert case.detector.family.name == request.config.getoption("--camaudit-model").replace("-detector", "").replace("shapes", "rcnn")
    if case.detections:
        case.assert_cam_mass(case.detections[0], at_least=0.0)
'''


@pytest.fixture
def installed(tmp_path, monkeypatch) -> Path:
    """A distribution ``tinyfam`` outside the package: its family module and an ``entry_points.txt`` with a broken twin."""
    site = tmp_path / "site"
    (site / "tinyfam").mkdir(parents=True)
    (site / "tinyfam" / "__init__.py").write_text("")
    (site / "tinyfam" / "family.py").write_text(TINY_FAMILY)
    info = site / "tinyfam-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinyfam\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{registry.GROUP}]\ntiny = tinyfam.family:HANDLES\nbroken = tinyfam.missing:HANDLES\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    return site


BROKEN = f"the detector family of entry point broken = tinyfam.missing:HANDLES (group {registry.GROUP}) is left out: ModuleNotFoundError"


def _warned(result: pytest.RunResult) -> bool:
    """Whether the run named the broken entry point and its error (once is enough: the run goes on)."""
    return any(BROKEN in line for line in result.outlines + result.errlines)


@pytest.mark.slow
def test_an_installed_family_is_found_through_its_entry_point_and_a_broken_one_only_warns(pytester, installed):
    pytester.makepyfile(test_tiny=TINY_TESTS)
    result = pytester.runpytest_subprocess("--camaudit-model=tiny-detector", "--camaudit-score-threshold=0", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert _warned(result)
    result = pytester.runpytest_subprocess("--camaudit-model=shapes", "-p", "no:cacheprovider")  # a run that does not use it
    result.assert_outcomes(passed=1)
    assert _warned(result)
    result = pytester.runpytest_subprocess("--camaudit-model=tiny-detektor", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown model 'tiny-detektor'; expected an embedded detector (shapes*the tiny detector (tiny-detector)*"])
