"""transformers detection types beyond DETR and RT-DETR: detections, loading from folders and conftests, timm folders.

What every family guarantees (geometry, bright spot, gradients vs the full graph and float64 finite
differences, every method, hooks, context, discovery) is the contract suite's
(``tests/detectors/contract``), on the same tiny models (``support.hf_types``). Here: each type's
detections are its processor's own ``post_process_object_detection`` bit for bit (labels + 1), each
loads from a ``save_pretrained`` folder (with its processor, and without: the family's default built
offline), folders that need timm or the Hub say so, and pytest runs with a folder and a conftest model.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from support import hf  # skips this module where transformers is not installed
from support.hf import noise
from support.network import block_network

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.errors import ModelLoadError

TYPES = ("rt-detr-v2", "d-fine", "deimv2", "deformable-detr", "conditional-detr", "dab-detr", "rf-detr", "lw-detr",
         "table-transformer", "yolos", "pp-doclayout-v2", "pp-doclayout-v3", "pp-doclayout-v4")
DEFAULTS = {"rt-detr-v2": "RTDetrImageProcessor", "d-fine": "RTDetrImageProcessor", "deimv2": "RTDetrImageProcessor",
            "deformable-detr": "DeformableDetrImageProcessor", "conditional-detr": "ConditionalDetrImageProcessor",
            "dab-detr": "ConditionalDetrImageProcessor", "rf-detr": "RfDetrImageProcessor",
            "lw-detr": "DeformableDetrImageProcessor", "table-transformer": "DetrImageProcessor", "yolos": "YolosImageProcessor",
            "pp-doclayout-v2": "PPDocLayoutV2ImageProcessor", "pp-doclayout-v3": "PPDocLayoutV3ImageProcessor", "pp-doclayout-v4": "PPDocLayoutV4ImageProcessor"}
"""The processor each family builds offline for a folder without ``preprocessor_config.json``."""


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    block_network(monkeypatch)


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("family", TYPES)
def test_detections_are_the_processors_with_labels_plus_one(family):
    detector = hf.tiny_detector(family)
    fam, model = detector.family, detector.model
    image = noise(203, 317, seed=1)
    x = fam.inputs(hf.processor(family), [torch.from_numpy(image).permute(2, 0, 1).contiguous()], model)
    with torch.no_grad():
        outputs = model(**x)
    (ref,) = hf.processor(family).post_process_object_detection(outputs, threshold=fam.threshold, target_sizes=[image.shape[:2]])
    (got,) = detector.run([_tensor(image)])
    assert 0 < len(ref["scores"]) and torch.equal(got["boxes"], ref["boxes"]) and torch.equal(got["scores"], ref["scores"])
    assert torch.equal(got["labels"], ref["labels"] + 1)
    wrapped = Detector.wrap(model)  # a bare model: the registry's family, its default processor
    assert wrapped.family.name == family and wrapped.class_names == ["__background__", *hf.LABELS]
    assert type(wrapped.family.image_processor()).__name__ == DEFAULTS[family]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, str]:
    out = {}
    for family in TYPES:
        folder = tmp_path_factory.mktemp(family)
        hf.model(family).save_pretrained(folder)
        hf.processor(family).save_pretrained(folder)
        out[family] = str(folder)
    return out


@pytest.mark.parametrize("family", TYPES)
def test_a_save_pretrained_folder_loads_offline_with_and_without_its_processor(saved, family, tmp_path):
    detector = load_detector(saved[family], device="cpu")
    assert detector.family.name == family and detector.model.config._attn_implementation == "eager"
    assert detector.identity == hf.tiny_detector(family).identity
    assert type(detector.family.image_processor()).__name__ == type(hf.processor(family)).__name__
    image = _tensor(noise(157, 419, seed=12))
    tiny = hf.tiny_detector(family)
    detector = Detector.wrap(detector.model, family=detector.family.configured(threshold=tiny.family.threshold))
    (a,), (b,) = detector.run([image]), tiny.run([image])
    assert all(torch.equal(a[k], b[k]) for k in ("boxes", "labels", "scores"))
    bare = tmp_path / "bare"
    shutil.copytree(saved[family], bare)
    (bare / "preprocessor_config.json").unlink()
    default = load_detector(str(bare), device="cpu")
    assert "no preprocessor_config.json" in default.meta["processor"]
    assert type(default.family.image_processor()).__name__ == DEFAULTS[family]


def _with_config(folder: str, tmp_path, **changes) -> str:
    target = tmp_path / "model"
    shutil.copytree(folder, target)
    config = json.loads((target / "config.json").read_text())
    config.update(changes)
    (target / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not ...}))
    return str(target)


@pytest.mark.skipif(bool(__import__("importlib.util").util.find_spec("timm")), reason="timm is installed here")
def test_folders_that_need_timm_or_the_hub_say_so(saved, tmp_path):
    # the Hub's facebook/detr-resnet-50 form: a timm name, no backbone_config, no use_timm_backbone key
    hub = _with_config(saved["conditional-detr"], tmp_path / "a", backbone="resnet50", backbone_config=None, use_timm_backbone=...)
    with pytest.raises(ModelLoadError, match=r"uses a timm backbone \(config.json: backbone 'resnet50', use_timm_backbone absent\); "
                                             r"install timm \(pip install timm\)"):
        load_detector(hub, device="cpu")
    timm_config = _with_config(saved["deformable-detr"], tmp_path / "b", backbone_config={"model_type": "timm_backbone", "backbone": "resnet18"})
    with pytest.raises(ModelLoadError, match="uses a timm backbone .*'resnet18'"):
        load_detector(timm_config, device="cpu")
    by_id = _with_config(saved["dab-detr"], tmp_path / "c", backbone="microsoft/resnet-50", backbone_config=None, use_timm_backbone=False)
    with pytest.raises(ModelLoadError, match=r"names its backbone by Hub id \('microsoft/resnet-50'\).*re-save it with save_pretrained"):
        load_detector(by_id, device="cpu")


INNER = """
import numpy as np

def test_audit(camaudit):
    image = np.random.default_rng(0).integers(0, 256, (203, 317, 3), dtype=np.uint8)
    case = camaudit.audit(image, name="noise")
    assert case.detector.family.name == "{family}" and case.detections
    det = case.detections[0]
    case.assert_cam_mass(det, at_least=0.0, method="hirescam")
    case.assert_survives_without_context(det, max_drop=1.0)
"""


@pytest.mark.slow
@pytest.mark.parametrize("family", ["d-fine", "deformable-detr"])
def test_pytest_run_with_a_folder_as_camaudit_model(pytester, saved, family):
    pytester.makepyfile(INNER.format(family=family))
    result = pytester.runpytest(f"--camaudit-model={saved[family]}", "--camaudit-method=eigengradcam", "--camaudit-score-threshold=0")
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_pytest_run_with_a_conftest_returning_a_bare_model(pytester):
    pytester.syspathinsert(os.path.dirname(os.path.dirname(__file__)))
    pytester.makeconftest(
        """
        import pytest
        from support import hf

        @pytest.fixture(scope="session")
        def camaudit_detector():
            return hf.model("dab-detr")  # a bare transformers model: the DAB-DETR family and its default processor
        """
    )
    pytester.makepyfile(INNER.format(family="dab-detr"))
    pytester.runpytest("--camaudit-score-threshold=0", "--camaudit-method=attention").assert_outcomes(passed=1)
