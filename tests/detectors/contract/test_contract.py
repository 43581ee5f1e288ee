"""The family contract: what every detector family guarantees, checked on one probe model per family.

Parametrised over :data:`support.contract.PROBES` (a new family adds one probe there and nothing
here): the registry picks the declared family, geometry is exact at an odd size, a bright spot is
found within one feature cell, per-box gradients equal the full forward's, every CAM method maps
or names the alternatives, no hook of ours is left (also when the model raises), broken inputs give
clear errors, the context re-score and the discovery profile run, and the family keeps no
per-image state. What is particular to a family (its framework's own detections, preprocessing and
loading) stays in its own test module (``tests/detectors/test_<ecosystem>*.py``).
"""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch
from support.contract import PROBES, Probe, discovery_profile, graph_twin
from support.hooks import count_hooks
from support.network import block_network
from support.probes import SPOTS, cell_on_image, peak, spot_image

from pytest_camaudit.detectors import registry
from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.engine.alignment import level_stride
from pytest_camaudit.engine.context import best_match_score
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import CamauditError, DetectorRuntimeError, ExpectationError
from pytest_camaudit.methods import cam_for, drise_method, get_method, method_names
from pytest_camaudit.surroundings import REGIONS, region_masks

SMALL_DRISE = drise_method(masks=8, cells=4, batch_size=8)  # the registry's default runs 1000 forwards


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    block_network(monkeypatch)


@dataclasses.dataclass
class Case:
    probe: Probe
    detector: Detector
    image: np.ndarray


def _image(probe: Probe) -> np.ndarray:
    if probe.image is not None:
        return probe.image()
    return np.random.default_rng(0).integers(0, 256, (*probe.size, 3), dtype=np.uint8)


@pytest.fixture(scope="module", params=PROBES, ids=[p.id for p in PROBES])
def case(request) -> Case:
    probe: Probe = request.param
    image = _image(probe)
    assert image.shape[:2] == probe.size and probe.size[0] != probe.size[1] and (probe.size[0] % 2 or probe.size[1] % 2)
    return Case(probe, probe.build(), image)


@pytest.fixture(scope="module")
def engine(case):
    return CamEngine(case.detector)


@pytest.fixture(scope="module")
def analysis(case, engine):
    analysis = engine.analyze(load_image(case.image))
    assert analysis.detections, f"probe {case.probe.id} detects nothing on its image"
    return analysis


def compute(analysis, method: str, detection):
    m = SMALL_DRISE if method == "drise" else get_method(method)
    return m.compute(analysis, detection if m.per_box else None)


# -- the registry ---------------------------------------------------------------------------------


def test_every_declared_family_has_a_probe():
    declared = {d.handles.name for d in registry.declarations() if d.handles.family and not d.installed}
    assert declared <= {p.family for p in PROBES}, f"families without a probe in support.contract.PROBES: {declared - {p.family for p in PROBES}}"


def test_the_registry_picks_the_declared_family(case):
    family = case.detector.family
    assert registry.family_for(case.detector.model).name == family.name == case.probe.family
    declared = [d for d in registry.declarations() if d.handles.name == case.probe.family]
    assert len(declared) == 1 and type(family).handles == declared[0].handles
    assert type(family).__module__ == declared[0].module


def test_the_family_keeps_no_per_image_state_and_nothing_is_patched(case):
    detector, family = case.detector, case.detector.family
    assert dataclasses.is_dataclass(family) and type(family).__dataclass_params__.frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        family.tap = object()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        detector.family = family  # type: ignore[misc]
    before = dict(vars(family))
    engine = CamEngine(detector)
    analysis = engine.analyze(load_image(np.ascontiguousarray(case.image[::-1])))  # another image
    if analysis.detections:
        cam_for(analysis, "hirescam", analysis.detections[0])
        engine.without_context(analysis, analysis.detections[:1])
    after = vars(family)
    assert after.keys() == before.keys() and all(after[k] is v for k, v in before.items())


# -- geometry and alignment ------------------------------------------------------------------------


def test_geometry_is_exact_at_an_odd_size(case, analysis):
    g = analysis.geometry
    assert g.original == case.probe.size
    top, left = g.offset
    assert top + g.resized[0] <= g.padded[0] and left + g.resized[1] <= g.padded[1]
    for name, level in analysis.levels.items():  # every level tiles the padded canvas
        for cells, padded in zip(level.shape[-2:], g.padded, strict=True):
            s = level_stride(padded, cells)
            assert (cells - 1) * s < padded <= cells * s, (name, cells, padded, s)
    det = analysis.detections[0]  # a one-hot map at the grid cell under the box centre peaks at the box centre (± one cell)
    (cx0, cy0, cx1, cy1), (gh, gw) = g.to_canvas(det.box), analysis.grid
    grid_map = torch.zeros(gh, gw)
    grid_map[min(gh - 1, int((cy0 + cy1) / 2 / (g.padded[0] / gh))), min(gw - 1, int((cx0 + cx1) / 2 / (g.padded[1] / gw)))] = 1.0
    py, px = peak(analysis.to_image(grid_map).numpy())
    cell_y, cell_x = cell_on_image(g, analysis.grid)
    cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
    clipped = (min(max(cx, 0.0), g.original[1] - 1.0), min(max(cy, 0.0), g.original[0] - 1.0))  # a box may reach past the image
    assert abs(px + 0.5 - clipped[0]) <= cell_x + 0.5 and abs(py + 0.5 - clipped[1]) <= cell_y + 0.5


SPOT_CASES = [pytest.param(p, spot, id=f"{p.id}-{spot[0]}x{spot[1]}") for p in PROBES if p.spot is not None for spot in SPOTS]


@pytest.mark.parametrize(("probe", "spot"), SPOT_CASES)
def test_a_bright_spot_is_found_within_one_feature_cell(probe, spot):
    """A twin whose features are pooled brightness: EigenCAM peaks at a white square on black.

    The bound is one cell of the CAM's grid, of the coarsest level, or of a given stride (``Probe.spot_cell``
    says which, and why); a wrong resize, stretch, padding or letterbox misses by far more.
    """
    h, w, (cy, cx) = spot
    analysis = CamEngine(probe.spot(), "eigencam").analyze(load_image(spot_image(h, w, cy, cx)))
    cam = cam_for(analysis).values
    assert cam.shape == (h, w) and np.isfinite(cam).all()
    g = analysis.geometry
    coarsest = min((v.shape[-2:] for v in analysis.levels.values()), key=lambda s: s[0] * s[1])
    cells = {"grid": analysis.grid, "coarsest": tuple(coarsest)}.get(probe.spot_cell)  # type: ignore[call-overload]
    if cells is None:  # a stride on the canvas
        cells = (g.padded[0] / int(probe.spot_cell), g.padded[1] / int(probe.spot_cell))
    cell_y, cell_x = cell_on_image(g, cells)
    py, px = peak(cam)
    assert abs(py - cy) <= cell_y and abs(px - cx) <= cell_x, ((py, px), spot, (cell_y, cell_x))


# -- gradients -------------------------------------------------------------------------------------


def _full_graph(case, analysis, detections):
    if case.probe.reference is not None:
        return [case.probe.reference(case.detector, case.image, analysis, det) for det in detections]
    twin = CamEngine(graph_twin(case.detector)).analyze(load_image(case.image), grad=True)
    assert [(d.label, d.score) for d in twin.detections] == [(d.label, d.score) for d in analysis.detections]
    return [list(twin.gradients(twin.detections[det.index]).values()) for det in detections]


def test_per_box_gradients_equal_the_full_graphs(case, analysis):
    detections = analysis.detections[:3]
    local = [list(analysis.gradients(det).values()) for det in detections]
    assert not analysis.has_graph  # the box's own path: no autograd forward was needed
    for det, ours, full in zip(detections, local, _full_graph(case, analysis, detections), strict=True):
        assert len(ours) == len(full) and any(float(b.abs().max()) > 0 for b in full), det.describe()
        for a, b in zip(ours, full, strict=True):
            assert a.shape == b.shape
            if float(b.abs().max()) == 0:
                assert float(a.abs().max()) == 0
                continue
            r = float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])
            assert r >= 0.999 and torch.allclose(a, b, rtol=1e-4, atol=1e-6 * float(b.abs().max())), (det.describe(), r)


def test_per_box_gradients_equal_float64_finite_differences(case, analysis):
    """A central difference along a random direction of every level, in float64.

    The full-graph comparison above cannot see a bug the framework's autograd shares with the family's path
    (torch 2.14.1's CPU BatchNorm backward on a channels_last gradient of an NCHW input was one); this can.
    A probe declares it one of two ways: ``logit64`` (the detection's logit from the levels, differenced here)
    or ``directional`` (the family's own re-computation differenced by the probe's helper).
    """
    if case.probe.logit64 is not None:
        _check_logit64(case, analysis)
    elif case.probe.directional is not None:
        for det in analysis.detections[:2]:
            fd, analytic, scale = case.probe.directional(case.detector, analysis, det, list(analysis.gradients(det).values()))
            assert scale > 0 and abs(fd - analytic) <= 1e-3 * scale, (det.describe(), fd, analytic, scale)
    else:
        pytest.skip(f"probe {case.probe.id} declares no finite-difference check (Probe.logit64 or Probe.directional)")


def _check_logit64(case, analysis) -> None:
    levels = analysis.capture.levels
    gen = torch.Generator().manual_seed(0)
    direction = {k: torch.randn(v.shape, generator=gen, dtype=torch.float64) for k, v in levels.items()}
    eps = 1e-6
    for det in analysis.detections[:3]:
        grads = analysis.gradients(det)
        ours = sum(float((grads[k].double() * direction[k]).sum()) for k in levels)

        def logit(t: float, det=det) -> float:
            shifted = type(levels)((k, v.double() + t * direction[k]) for k, v in levels.items())
            return case.probe.logit64(case.detector, analysis, det, shifted)

        fd = (logit(eps) - logit(-eps)) / (2 * eps)
        assert abs(ours - fd) <= 1e-3 * max(abs(fd), 1e-6), (det.describe(), ours, fd)


# -- methods, hooks, inputs, context, discovery -----------------------------------------------------


def test_every_method_maps_or_names_the_alternatives(case, analysis):
    assert set(case.probe.unavailable) <= set(method_names())
    det = analysis.detections[0]
    for name in method_names():
        expected = case.probe.unavailable.get(name)
        if expected is not None:
            with pytest.raises(DetectorRuntimeError, match=expected) as info:
                compute(analysis, name, det)
            assert re.search(r"use .*(eigengradcam|hirescam|layercam|drise)", str(info.value)), str(info.value)
            continue
        cam = compute(analysis, name, det)
        v = cam.values
        assert v.shape == case.probe.size and v.dtype == np.float32 and np.isfinite(v).all(), name
        assert v.min() >= 0.0 and v.max() in (0.0, 1.0) and cam.target == (det.index if get_method(name).per_box else None), name
        if case.probe.nonempty is None or name in case.probe.nonempty:
            assert float(v.max()) == 1.0 and not cam.degenerate, name


def _explain_everything(engine: CamEngine, image: np.ndarray, probe: Probe) -> None:
    analysis = engine.analyze(load_image(image))
    det = analysis.detections[0]
    for name in method_names():
        if name not in probe.unavailable:
            compute(analysis, name, det)
    engine.without_context(analysis, [det])


def test_no_hooks_of_ours_are_left_even_when_the_model_raises(case, monkeypatch):
    """Counted relative to the hooks a library installs itself (transformers' output recorders on first use)."""
    engine, model = CamEngine(case.detector), case.detector.model
    _explain_everything(engine, case.image, case.probe)
    before = count_hooks(model)
    assert case.probe.library_hooks or before == 0
    _explain_everything(engine, np.ascontiguousarray(case.image[:, ::-1]), case.probe)
    assert count_hooks(model) == before
    first = next(iter(case.detector.family.hook_points(case.detector).values())).module  # the first module the capture records

    def boom(*args, **kwargs):
        raise RuntimeError("boom inside the model")

    monkeypatch.setattr(first, "forward", boom)
    with pytest.raises(DetectorRuntimeError, match=f"detector {re.escape(case.detector.name)} raised RuntimeError.*boom inside the model"):
        engine.analyze(load_image(case.image[::-1, ::-1].copy()))
    assert count_hooks(model) == before


def test_broken_inputs_give_clear_errors(case, analysis):
    with pytest.raises(ExpectationError, match=rf"unknown class 'no-such-class' for detector {re.escape(case.detector.name)}; known classes"):
        case.detector.label_index("no-such-class")
    with pytest.raises(ValueError, match="unknown CAM method 'no-such-method'; expected one of eigencam"):
        cam_for(analysis, "no-such-method")
    engine = CamEngine(case.detector)
    for h, w in ((1, 1), (3, 2)):  # degenerate images: a map of their size, or an error that says what went wrong
        image = np.full((h, w, 3), 200, np.uint8)
        try:
            tiny = engine.analyze(load_image(image))
        except CamauditError as exc:
            assert case.detector.name in str(exc) or "image" in str(exc), str(exc)
            continue
        assert cam_for(tiny, "eigencam").values.shape == (h, w)


def test_the_context_rescore_runs(case, engine, analysis):
    det = analysis.detections[0]
    (result,) = engine.without_context(analysis, [det])
    assert result.score_with == det.score and 0.0 <= result.score_without <= 1.0
    assert result.image.shape == case.image.shape
    fill = tuple(int(v) for v in case.detector.fill_colour())
    assert case.probe.fill is None or fill == case.probe.fill
    outside = [(y, x) for y, x in ((0, 0), (case.image.shape[0] - 1, case.image.shape[1] - 1))
               if not (result.kept[1] <= y < result.kept[3] and result.kept[0] <= x < result.kept[2])]
    assert all(tuple(int(v) for v in result.image[y, x]) == fill for y, x in outside)


def test_the_discovery_profile_runs(case, engine, analysis):
    """``--camaudit-discover``'s context profile (``Probe.discovery``, default discovery's own): every region
    re-scored through the engine's batched ``detect``, a share of the score lost that is at most all of it."""
    h, w = analysis.image.pixels.shape[:2]
    inside = [d for d in analysis.detections if d.box[0] >= 1 or d.box[1] >= 1 or d.box[2] <= w - 1 or d.box[3] <= h - 1]
    det = (inside or analysis.detections)[0]  # a box with image outside it, when the model gives one
    profile = (case.probe.discovery or discovery_profile)(engine, analysis, det)
    assert tuple(profile) == REGIONS and (profile["outside"] is None) == (not inside)
    assert all(math.isfinite(v) and v <= 1.0 for v in profile.values() if v is not None), profile
    if not inside:  # every box covers the image (a random document-layout model): nothing outside to fill
        return
    filled = np.array(analysis.image.pixels)  # "outside" is the context check without its margin: the same re-score
    filled[region_masks(det.box, filled.shape[:2])["outside"]] = case.detector.fill_colour()
    again = best_match_score(engine.detect([filled], batch_size=1)[0], det)
    assert profile["outside"] == pytest.approx((det.score - again) / max(det.score, 1e-12), abs=2e-4)
