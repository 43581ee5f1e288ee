"""Every CAM method on every torchvision detector (random weights, small inputs, CPU).

Each builder is built once per module (``support.torchvision.build_small``). What every family
guarantees (geometry, bright spot, gradients, methods, hooks, context) is the contract suite's
(``tests/detectors/contract``); here, every builder, not one per family.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from support.hooks import count_hooks
from support.torchvision import build_small

from pytest_camaudit.detectors.registry import family_for
from pytest_camaudit.detectors.specs import TORCHVISION_BUILDERS
from pytest_camaudit.detectors.torchvision.common import torchvision_class_names
from pytest_camaudit.engine.alignment import level_stride
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import DetectorRuntimeError
from pytest_camaudit.methods import drise_method, get_method, method_names

IMAGE_HW = (70, 90)  # not square, not a multiple of 32: resize and padding both matter


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.random((*IMAGE_HW, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module", params=TORCHVISION_BUILDERS)
def arch(request):
    detector = build_small(request.param)
    engine = CamEngine(detector, "gradcam")
    analysis = engine.analyze(load_image(_image()))
    assert analysis.detections, f"{request.param} returned no box at score_thresh 0"
    return request.param, detector, engine, analysis


def test_class_names_come_from_the_weights_metadata(arch):
    builder, detector, _, _ = arch
    if builder == "keypointrcnn_resnet50_fpn":
        assert detector.class_names == ["no person", "person"]  # what torchvision's metadata says
    else:
        assert len(detector.class_names) == 91 and detector.class_names[1] == "person"
    assert detector.meta["family"] == family_for(detector.model).name
    assert detector.target_layer is detector.model.backbone


def test_every_method_gives_a_finite_map_of_the_image_size(arch):
    builder, detector, _, analysis = arch
    det = analysis.detections[0]
    drise = drise_method(masks=8, batch_size=8)  # the registry's default would run 1000 forwards
    non_empty = []
    for name in method_names():
        m = drise if name == "drise" else get_method(name)
        if name == "attention":  # transformer detectors only: a clear error elsewhere
            with pytest.raises(DetectorRuntimeError, match="DETR family.*eigengradcam"):
                m.compute(analysis, det)
            continue
        cam = m.compute(analysis, det if m.per_box else None)
        v = cam.values
        assert v.shape == IMAGE_HW and v.dtype == np.float32, (builder, name)
        assert np.isfinite(v).all() and v.min() >= 0.0 and v.max() <= 1.0, (builder, name)
        assert v.max() in (0.0, 1.0), (builder, name)
        assert cam.target == (det.index if m.per_box else None)
        if v.max() > 0:
            non_empty.append(name)
    assert {"eigencam", "hirescam"} <= set(non_empty), (builder, non_empty)
    assert count_hooks(detector.model) == 0


def test_geometry_is_the_one_model_transform_applies(arch):
    builder, detector, _, analysis = arch
    x = torch.from_numpy(_image()).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        image_list, _ = detector.model.transform([x])
    g = analysis.geometry
    assert g.original == IMAGE_HW
    assert g.resized == tuple(int(v) for v in image_list.image_sizes[0])
    assert g.padded == tuple(image_list.tensors.shape[-2:])
    for name, level in analysis.levels.items():  # every level tiles the padded canvas
        for cells, padded in zip(level.shape[-2:], g.padded, strict=True):
            s = level_stride(padded, cells)
            assert (cells - 1) * s < padded <= cells * s, (builder, name, cells, padded, s)


def test_a_feature_cell_maps_back_onto_its_own_pixels(arch):
    """A one-hot map at the grid cell under the box centre peaks at the box centre (± one cell)."""
    _, _, _, analysis = arch
    det = analysis.detections[0]
    g = analysis.geometry
    (h0, w0), (hr, wr), (hp, wp) = g.original, g.resized, g.padded
    gh, gw = analysis.grid
    cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
    cell_y, cell_x = int(cy * hr / h0 / (hp / gh)), int(cx * wr / w0 / (wp / gw))
    grid_map = torch.zeros(gh, gw)
    grid_map[cell_y, cell_x] = 1.0
    img = analysis.to_image(grid_map)
    py, px = np.unravel_index(int(torch.argmax(img)), img.shape)
    cell_h0, cell_w0 = hp / gh * h0 / hr, wp / gw * w0 / wr  # one grid cell in original pixels
    assert abs(px + 0.5 - cx) <= cell_w0 and abs(py + 0.5 - cy) <= cell_h0


def test_two_stage_gradients_reach_only_the_boxs_roi_footprint(shapes_detector):
    """A trained two-stage box's score reads one level, around its box (the proposal it came from)."""
    from pytest_camaudit.zoo.world import make_layout, render

    analysis = CamEngine(shapes_detector, "hirescam").analyze(load_image(render(make_layout(20_000_003))))
    g = analysis.geometry
    (h0, w0), (hr, wr), (hp, wp) = g.original, g.resized, g.padded
    dets = [d for d in analysis.detections if d.score >= 0.5]
    assert len(dets) >= 2
    for det in dets:
        grads = analysis.gradients(det)
        touched = [n for n, t in grads.items() if float(t.abs().max()) > 0]
        assert len(touched) == 1, touched  # RoIAlign reads one level per box
        t = grads[touched[0]]
        ys, xs = torch.nonzero(t.abs().sum(0) > 0, as_tuple=True)
        cell_x, cell_y = wp / t.shape[-1] * w0 / wr, hp / t.shape[-2] * h0 / hr  # one cell in original px
        x1, y1, x2, y2 = det.box
        # bilinear sampling reads at most one cell beyond the proposal; the box moved a little from it
        assert float(xs.min()) * cell_x >= x1 - 2 * cell_x - 4 and float(xs.max() + 1) * cell_x <= x2 + 2 * cell_x + 4
        assert float(ys.min()) * cell_y >= y1 - 2 * cell_y - 4 and float(ys.max() + 1) * cell_y <= y2 + 2 * cell_y + 4


def test_ablating_a_pooled_channel_is_ablating_the_level_channel():
    """The AblationCAM shortcut for two-stage models: RoIAlign is per channel and keeps constants."""
    from pytest_camaudit.methods.ablation import local_scorer

    detector = build_small("fasterrcnn_resnet50_fpn")
    analysis = CamEngine(detector, "ablationcam").analyze(load_image(_image()))
    det = analysis.detections[0]
    scorer = local_scorer(analysis, det)
    pool = detector.model.roi_heads.box_roi_pool
    box = torch.tensor([[det.box[0] * analysis.geometry.resized[1] / IMAGE_HW[1], det.box[1] * analysis.geometry.resized[0] / IMAGE_HW[0],
                         det.box[2] * analysis.geometry.resized[1] / IMAGE_HW[1], det.box[3] * analysis.geometry.resized[0] / IMAGE_HW[0]]])
    for channel, value in ((3, 0.0), (200, -1000.0)):
        feats = OrderedDict((k, v[None].clone()) for k, v in analysis.levels.items())
        feats[scorer.level][0, channel] = value
        pooled = pool(feats, [box], [analysis.geometry.resized])[0]
        shortcut = scorer.window.clone()
        shortcut[channel] = value
        torch.testing.assert_close(pooled, shortcut, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("builder", ["retinanet_resnet50_fpn", "ssd300_vgg16", "ssdlite320_mobilenet_v3_large", "fcos_resnet50_fpn"])
def test_one_stage_scorer_reproduces_every_detection_score(builder):
    from pytest_camaudit.methods.ablation import local_scorer

    detector = build_small(builder)
    analysis = CamEngine(detector, "ablationcam").analyze(load_image(_image()))
    for det in analysis.detections:
        scorer = local_scorer(analysis, det)  # raises when the window does not reproduce the score
        assert abs(scorer.base - det.score) <= 1e-3 * max(1.0, det.score)
        if builder.startswith("ssd"):
            assert scorer.window.shape[-2:] <= (3, 3)  # a 3×3 head reads a 3×3 window


@pytest.mark.parametrize("builder", ["keypointrcnn_resnet50_fpn", "ssdlite320_mobilenet_v3_large", "fcos_resnet50_fpn"])
def test_build_torchvision_names_classes_from_the_weights_metadata(builder):
    from pytest_camaudit.detectors.torchvision.common import build_torchvision

    _, classes, meta = build_torchvision(builder, None)
    assert meta["weights"].startswith("random")
    assert classes == (["no person", "person"] if builder.startswith("keypoint") else torchvision_class_names(builder, _))
    assert len(classes) in (2, 91)


def test_two_stage_proposal_levels_mapped_once_per_image_match_each_box_mapped_alone(shapes_detector):
    """The level of every detection's proposal, mapped once per image, is the pooler's per-box choice,
    and the gradients through it are bit for bit those that map the box themselves."""
    from pytest_camaudit.detectors.torchvision.rcnn import match_proposals, proposal_gradients, proposal_levels
    from pytest_camaudit.zoo.world import make_layout, render

    analysis = CamEngine(shapes_detector, "eigengradcam").analyze(load_image(render(make_layout(20_000_004))))
    model, capture = shapes_detector.model, analysis.capture
    proposals = match_proposals(model.roi_heads, capture.memo["head"])
    levels = proposal_levels(model, capture.levels, proposals)
    pool = model.roi_heads.box_roi_pool
    assert levels == [int(pool.map_levels([p[None]])[0]) for p in proposals]
    assert len(levels) == len(analysis.detections) >= 2
    size = tuple(int(v) for v in capture.geometry.resized)
    for det, proposal, level in zip(analysis.detections, proposals, levels, strict=True):
        alone = proposal_gradients(model, capture.levels, proposal, det.label, size)
        given = proposal_gradients(model, capture.levels, proposal, det.label, size, level=level)
        assert list(alone) == list(given) and all(torch.equal(alone[k], given[k]) for k in alone)
