"""The ``attention`` method: Chefer et al.'s relevance for DETR on the image's pixels; a clear error elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import hf  # skips this module where transformers is not installed
from support.network import block_network

from pytest_camaudit.detectors.transformers.folders import hf_detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import DetectorRuntimeError
from pytest_camaudit.methods import cam_for, get_method
from pytest_camaudit.methods.attention import attention_bars, relevance, relevance_rules
from pytest_camaudit.metrics import rank_correlation

IMAGE = np.random.default_rng(3).integers(0, 256, (203, 317, 3), dtype=np.uint8)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    block_network(monkeypatch)


@pytest.fixture(scope="module")
def analysis():
    engine = CamEngine(hf_detector(hf.tiny_detr(), hf.processor("detr"), threshold=0.0, name="tiny-detr"), "attention")
    return engine.analyze(load_image(IMAGE))


def _rownorm(r: torch.Tensor) -> torch.Tensor:
    s = r.sum(-1, keepdim=True)
    return torch.where(s > 0, r / s.clamp_min(1e-300), torch.zeros_like(r))


def literal_rules(encoder, decoder, cross, query):
    """Chefer et al. 2021, eqs. 1–10, as written (float64, HW × HW matrices): the reference for the fast rules."""
    encoder, decoder, cross = ([a.double() for a in group] for group in (encoder, decoder, cross))
    n_q, n_tok = cross[0].shape
    eye_t, eye_q = torch.eye(n_tok, dtype=torch.float64), torch.eye(n_q, dtype=torch.float64)
    r_ii = eye_t.clone()
    for a in encoder:
        r_ii = r_ii + a @ r_ii  # eq. 6
    r_ii_bar = _rownorm(r_ii - eye_t) + eye_t  # eqs. 8-9
    r_qq, r_qi = eye_q.clone(), torch.zeros(n_q, n_tok, dtype=torch.float64)
    for a_self, a_cross in zip(decoder, cross, strict=True):
        r_qq, r_qi = r_qq + a_self @ r_qq, r_qi + a_self @ r_qi  # eqs. 6-7
        r_qi = r_qi + (_rownorm(r_qq - eye_q) + eye_q).t() @ a_cross @ r_ii_bar  # eq. 10
    return r_qi[query]


def test_fast_rules_equal_the_literal_recursion(analysis):
    detector, capture = analysis.detector, analysis.capture
    for det in analysis.detections[:3]:
        maps = detector.family.attention_maps(detector, capture, det)
        query = maps.query
        assert query == detector.family.query_of(capture, det)
        bars = attention_bars(maps)
        assert [tuple(b.shape) for b in bars[2]] == [(20, 160)] * 2  # 20 queries x (10 x 16) cells, two layers
        fast, literal = relevance_rules(*bars, query), literal_rules(*bars, query)
        assert float(literal.max()) > 0
        assert float((fast.double() - literal).abs().max() / literal.abs().max()) < 1e-5


def test_attention_map_is_the_relevance_of_its_box_on_the_pixels(analysis):
    first, second = analysis.detections[0], analysis.detections[1]
    cam = cam_for(analysis, "attention", first)
    assert cam.method == "attention" and cam.target == first.index and not cam.degenerate
    assert cam.values.shape == IMAGE.shape[:2] and np.isfinite(cam.values).all() and float(cam.values.max()) == pytest.approx(1.0)
    level, cells = relevance(analysis, first)
    assert level in analysis.levels and cells.shape == analysis.levels[level].shape[-2:] and float(cells.min()) >= 0
    assert cam_for(analysis, "attention", first) is cam  # memoised
    other = cam_for(analysis, "attention", second)
    assert rank_correlation(cam.values, other.values) < 0.99  # another query, another map


def test_attention_is_registered_as_a_per_box_method_without_the_engines_graph():
    method = get_method("Attention")
    assert method.name == "attention" and method.per_box and not method.needs_grad
    assert "Chefer et al. 2021" in method.summary


def test_padded_cells_get_no_gradient_and_no_relevance():
    processor = hf.processor("detr")
    processor.pad_size = {"height": 384, "width": 576}
    engine = CamEngine(hf_detector(hf.tiny_detr(), processor, threshold=0.0), "attention")
    analysis = engine.analyze(load_image(IMAGE))
    g = analysis.geometry
    assert g.resized == (320, 499) and g.padded == (384, 576)
    det = analysis.detections[0]
    (grad,) = analysis.gradients(det).values()
    _, cells = relevance(analysis, det)
    valid = torch.zeros(cells.shape, dtype=torch.bool)
    valid[:10, :16] = True  # ceil(320 / 32) x ceil(499 / 32) cells show the image
    assert float(grad[:, ~valid].abs().max()) == 0.0 and float(grad[:, valid].abs().max()) > 0
    assert float(cells[~valid].abs().max()) == 0.0 and float(cells[valid].max()) > 0
    cam = cam_for(analysis, "attention", det)
    assert cam.values.shape == IMAGE.shape[:2] and not cam.degenerate


def test_rt_detr_says_attention_is_not_available_and_names_what_to_use():
    engine = CamEngine(hf_detector(hf.tiny_rtdetr(), hf.processor("rt-detr"), threshold=0.0))
    analysis = engine.analyze(load_image(IMAGE))
    with pytest.raises(DetectorRuntimeError, match=r"not available for the rt-detr family: its decoder reads the image through "
                                                   r"deformable attention.*use eigengradcam, hirescam, layercam or drise"):
        cam_for(analysis, "attention", analysis.detections[0])


def test_a_torchvision_detector_says_attention_needs_a_transformer(shapes_engine):
    from pytest_camaudit.zoo.world import make_scene

    analysis = shapes_engine.analyze(load_image(make_scene(20_000_000).image))
    with pytest.raises(DetectorRuntimeError, match=r"attention relevance needs a transformer detector with attention maps \(DETR "
                                                   r"family\); use eigengradcam, hirescam, layercam or drise"):
        cam_for(analysis, "attention", analysis.detections[0])


def test_a_detr_without_eager_attention_is_told_how_to_load_it():
    torch.manual_seed(0)
    model = hf.make_selective(hf.hf.DetrForObjectDetection(hf.detr_config(attn_implementation=None)).eval())  # sdpa
    engine = CamEngine(hf_detector(model, hf.processor("detr"), threshold=0.0))
    analysis = engine.analyze(load_image(IMAGE))
    assert cam_for(analysis, "hirescam", analysis.detections[0]).values.shape == IMAGE.shape[:2]  # gradients do not need eager
    with pytest.raises(DetectorRuntimeError, match=r"attn_implementation='sdpa'.*load the model with attn_implementation='eager'"):
        cam_for(analysis, "attention", analysis.detections[0])
