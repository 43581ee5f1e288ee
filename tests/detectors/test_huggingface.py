"""Hugging Face transformers detectors (DETR, RT-DETR): detections, labels, geometry, the replay, loading.

Small random models built offline from configs (``support.hf``); every test runs with the network
blocked. Skipped, with the reason, where transformers is not installed. What every family
guarantees (bright spot, per-box gradients vs the full graph, every method, context fill, hooks)
is checked on the same models by the contract suite (``tests/detectors/contract``).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import sys
import weakref

import numpy as np
import pytest
import torch
from support import hf  # skips this module where transformers is not installed
from support.hf import noise
from support.network import block_network

import pytest_camaudit.detectors.transformers.detr
import pytest_camaudit.detectors.transformers.rtdetr  # noqa: F401
from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.detectors.transformers.family import TransformerFamily
from pytest_camaudit.detectors.transformers.runtime import import_transformers
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import ModelLoadError

FAMILIES = ("detr", "rt-detr")
SIZES = [(203, 317), (157, 419)]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    block_network(monkeypatch)


def reference(family: str, images: list[np.ndarray], threshold: float) -> list[dict]:
    """What transformers itself returns: processor (numpy HWC) → model → post_process_object_detection."""
    proc, model = hf.processor(family), hf.model(family)
    out = []
    for im in images:
        x = proc(images=im, return_tensors="pt", input_data_format="channels_last")
        with torch.no_grad():
            outputs = model(**x)
        out += proc.post_process_object_detection(outputs, threshold=threshold, target_sizes=[im.shape[:2]])
    return out


@pytest.fixture(scope="module")
def detectors() -> dict[str, Detector]:
    return {f: hf.tiny_detector(f) for f in FAMILIES}


@pytest.fixture(scope="module")
def engines(detectors) -> dict[str, CamEngine]:
    return {f: CamEngine(d, "eigencam") for f, d in detectors.items()}


# -- detections and labels -------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_detections_are_post_process_object_detection_with_labels_plus_one(detectors, family):
    detector = detectors[family]
    images = [noise(*SIZES[0], seed=1), noise(*SIZES[1], seed=2), noise(*SIZES[0], seed=3)]
    tensors = [torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im in images]
    ref = reference(family, images, detector.family.threshold)
    one_by_one = detector.run(tensors[:1]) + detector.run(tensors[1:2]) + detector.run(tensors[2:])
    for g, r in zip(one_by_one, ref, strict=True):  # bit for bit
        assert 0 < len(r["scores"]) < (20 if family == "detr" else 30)  # the threshold keeps some, drops some
        assert torch.equal(g["boxes"], r["boxes"]) and torch.equal(g["scores"], r["scores"])
        assert torch.equal(g["labels"], r["labels"] + 1) and g["labels"].dtype == torch.int64
    # one call: the two same-size images share a forward (float rounding only), the other runs alone (DETR would pad it)
    for g, r in zip(detector.run(tensors), ref, strict=True):
        assert torch.equal(g["labels"], r["labels"] + 1)
        assert torch.allclose(g["boxes"], r["boxes"], atol=1e-3) and torch.allclose(g["scores"], r["scores"], atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_class_is_reachable_by_name_and_the_family_is_found(detectors, family):
    detector = Detector.wrap(hf.model(family))
    assert isinstance(detector.family, TransformerFamily) and detector.family.name == family
    assert detector.class_names == ["__background__", *hf.LABELS]
    assert [detector.label_index(n) for n in hf.LABELS] == [1, 2, 3, 4, 5]
    analysis = CamEngine(detectors[family]).analyze(load_image(noise(*SIZES[0])))
    queries = analysis.capture.memo["queries"]
    assert len(queries) == len(analysis.detections) > 0
    assert all(d.label_name == hf.LABELS[d.label - 1] for d in analysis.detections)


# -- geometry and alignment ------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
@pytest.mark.parametrize("family", FAMILIES)
def test_geometry_is_the_processors(engines, family, size):
    analysis = engines[family].analyze(load_image(noise(*size)))
    x = hf.processor(family)(images=noise(*size), return_tensors="pt", input_data_format="channels_last")
    canvas = tuple(x["pixel_values"].shape[-2:])
    g = analysis.geometry
    assert g.original == size and g.padded == canvas and g.resized == canvas and g.offset == (0.0, 0.0)
    if family == "detr":  # short side 320, long side ≤ 512, aspect kept, no padding for one image
        assert min(canvas) == 320 or max(canvas) == 512
        assert abs(canvas[1] / canvas[0] - size[1] / size[0]) < 0.01
    strides = [canvas[0] / v.shape[-2] for v in analysis.levels.values()]
    assert all(abs(s - e) < 1 for s, e in zip(strides, [32] if family == "detr" else [8, 16, 32], strict=True))


# -- methods, context, hooks -----------------------------------------------------------------------

def test_the_kept_replay_goes_with_its_capture(detectors):
    engine = CamEngine(detectors["detr"], "hirescam")
    analysis = engine.analyze(load_image(noise(*SIZES[0], seed=13)))
    family = engine.detector.family
    replay = family.replay_for(engine.detector, analysis.capture)
    assert family.replay_for(engine.detector, analysis.capture) is replay  # kept for the capture's other boxes
    graph = weakref.ref(replay.logits)
    del analysis, replay
    engine.clear()
    gc.collect()
    assert graph() is None  # the replay's autograd graph went with the capture


# -- loading ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, str]:
    """A save_pretrained folder (model + processor) per family, loaded once here."""
    out = {}
    for family in FAMILIES:
        folder = tmp_path_factory.mktemp(family)
        hf.model(family).save_pretrained(folder)
        hf.processor(family).save_pretrained(folder)
        out[family] = str(folder)
        load_detector(str(folder), device="cpu")  # first load outside any pytester run (imports stay in the snapshot)
    return out


@pytest.mark.parametrize("family", FAMILIES)
def test_load_detector_reads_a_save_pretrained_folder_offline(saved, detectors, family):
    detector = load_detector(saved[family], device="cpu")
    assert detector.family.name == family and detector.class_names == ["__background__", *hf.LABELS]
    assert detector.model.config._attn_implementation == "eager"
    assert detector.identity == detectors[family].identity
    assert detector.meta["processor"].endswith("preprocessor_config.json")
    image = torch.from_numpy(noise(*SIZES[0], seed=12)).permute(2, 0, 1).float() / 255
    detector = dataclasses.replace(detector, family=detector.family.configured(threshold=detectors[family].family.threshold))
    (a,), (b,) = detector.run([image]), detectors[family].run([image])
    assert all(torch.equal(a[k], b[k]) for k in ("boxes", "labels", "scores"))


def _copy(folder: str, tmp_path, drop: str | None = None):
    import shutil

    target = tmp_path / "model"
    shutil.copytree(folder, target)
    if drop:
        (target / drop).unlink()
    return target


def test_broken_folders_say_which_file_is_wrong(saved, tmp_path):
    missing = _copy(saved["detr"], tmp_path / "a", drop="model.safetensors")
    with pytest.raises(ModelLoadError, match=r"has a config.json but no weights: expected .*model\.safetensors"):
        load_detector(str(missing), device="cpu")
    corrupt = _copy(saved["detr"], tmp_path / "b")
    (corrupt / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json is not a readable JSON config"):
        load_detector(str(corrupt), device="cpu")
    other = _copy(saved["detr"], tmp_path / "c")
    (other / "config.json").write_text(json.dumps({"model_type": "owlv2"}))  # open-vocabulary: no family explains it
    with pytest.raises(ModelLoadError, match=r"config\.json says model_type 'owlv2'; the Hugging Face family explains .*detr, .*rt_detr"):
        load_detector(str(other), device="cpu")
    truncated = _copy(saved["rt-detr"], tmp_path / "d")
    (truncated / "model.safetensors").write_bytes((truncated / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=r"cannot load the rt_detr detector in .*check its weights file"):
        load_detector(str(truncated), device="cpu")
    with pytest.raises(ModelLoadError, match="--camaudit-weights does not apply"):
        load_detector(saved["detr"], weights=str(tmp_path / "w.pt"), device="cpu")


def test_importing_transformers_leaves_the_environment_as_it_was(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
    before = dict(os.environ)
    assert import_transformers().__name__ == "transformers"
    assert dict(os.environ) == before  # --camaudit-offline still reads the user's HF_HUB_OFFLINE


def test_without_transformers_a_folder_says_how_to_install_it(saved, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # what an environment without the extra looks like
    with pytest.raises(ModelLoadError, match=r"need transformers, which cannot be imported .*pip install 'pytest-camaudit\[hf\]'"):
        load_detector(saved["detr"], device="cpu")


def test_a_folder_without_a_processor_uses_the_familys_default(saved, tmp_path):
    folder = _copy(saved["rt-detr"], tmp_path, drop="preprocessor_config.json")
    detector = load_detector(str(folder), device="cpu")
    assert "no preprocessor_config.json" in detector.meta["processor"]
    assert type(detector.family.image_processor()).__name__ == "RTDetrImageProcessor"


INNER = """
import numpy as np

def test_audit(camaudit):
    image = np.random.default_rng(0).integers(0, 256, (203, 317, 3), dtype=np.uint8)
    case = camaudit.audit(image, name="noise")
    assert case.detector.family.name == "{family}" and case.detections
    det = case.detections[0]
    case.assert_cam_mass(det, at_least=0.0)
    case.assert_cam_mass(det, at_least=0.0, method="hirescam")
    case.assert_survives_without_context(det, max_drop=1.0)
"""


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_pytest_run_with_a_folder_as_camaudit_model(pytester, saved, family):
    pytester.makepyfile(INNER.format(family=family))
    method = "attention" if family == "detr" else "eigengradcam"
    result = pytester.runpytest(f"--camaudit-model={saved[family]}", f"--camaudit-method={method}", "--camaudit-score-threshold=0")
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_pytest_run_with_a_conftest_returning_a_model_object_and_a_broken_folder(pytester, saved, tmp_path):
    pytester.syspathinsert(os.path.dirname(os.path.dirname(__file__)))
    pytester.makeconftest(
        """
        import pytest
        from support import hf

        @pytest.fixture(scope="session")
        def camaudit_detector():
            return hf.tiny_detr()  # a bare transformers model: the DETR family and its default processor
        """
    )
    pytester.makepyfile(INNER.format(family="detr"))
    pytester.runpytest("--camaudit-score-threshold=0").assert_outcomes(passed=1)
    (pytester.path / "conftest.py").unlink()
    broken = _copy(saved["detr"], tmp_path, drop="model.safetensors")
    result = pytester.runpytest(f"--camaudit-model={broken}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*camaudit could not load the detector: {broken} has a config.json but no weights*model.safetensors*"])
