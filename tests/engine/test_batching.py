"""Batched extra forwards (context re-scores, D-RISE masks, curves) equal one-at-a-time ones within float32 rounding.

Tolerance stated and held here: scores within 1e-5, D-RISE maps within 1e-4 (max abs, maps scaled
to max 1). One image's copies share its size, so the batch adds no padding; only the kernels'
summation order changes with the batch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods.drise import DriseConfig, drise_cam
from pytest_camaudit.zoo.world import make_scene

SCORE_TOLERANCE = 1e-5
MAP_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def scene():
    return load_image(make_scene(20_000_004).image)


def test_context_scores_batched_equal_one_at_a_time(shapes_detector, scene):
    one, many = CamEngine(shapes_detector, batch_size=1), CamEngine(shapes_detector, batch_size=8)
    a, b = one.analyze(scene), many.analyze(scene)
    dets = [d for d in a.detections if d.score >= 0.3]
    assert len(dets) >= 2
    r1 = one.without_context(a, dets)
    r8 = many.without_context(b, dets)
    assert [r.detection.index for r in r1] == [r.detection.index for r in r8]
    worst = max(abs(x.score_without - y.score_without) for x, y in zip(r1, r8, strict=True))
    assert worst <= SCORE_TOLERANCE, worst


def test_context_batches_go_through_the_detector_in_one_call(shapes_detector, scene, monkeypatch):
    engine = CamEngine(shapes_detector, batch_size=8)
    a = engine.analyze(scene)
    dets = a.detections[:5]
    calls: list[int] = []
    real, ours = type(engine.detector).run, engine.detector  # a Detector is frozen: patch its class, count this one's calls
    monkeypatch.setattr(type(ours), "run", lambda self, images: (self is ours and calls.append(len(images))) or real(self, images))
    engine.without_context(a, dets)
    assert calls == [len(dets)]


def test_drise_batched_equals_one_mask_at_a_time(shapes_detector, scene):
    engine = CamEngine(shapes_detector)
    a = engine.analyze(scene)
    det = a.detections[0]
    single = drise_cam(a, det, DriseConfig(masks=24, cells=8, batch_size=1)).values
    batched = drise_cam(a, det, DriseConfig(masks=24, cells=8, batch_size=12)).values
    assert float(np.abs(single - batched).max()) <= MAP_TOLERANCE


def test_a_run_with_its_batch_size_is_deterministic(shapes_detector, scene):
    maps = []
    for _ in range(2):
        engine = CamEngine(shapes_detector, batch_size=3)
        a = engine.analyze(scene)
        maps.append(drise_cam(a, a.detections[0], DriseConfig(masks=9, cells=6)).values)
        maps.append(np.array([r.score_without for r in engine.without_context(a, a.detections[:4])]))
    assert np.array_equal(maps[0], maps[2]) and np.array_equal(maps[1], maps[3])


@pytest.mark.parametrize("value", ["0", "-3", "eight", "2.5"])
def test_a_bad_batch_size_is_a_usage_error(pytester, value):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(f"--camaudit-batch-size={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--camaudit-batch-size: expected auto or a whole number >= 1, got '{value}'*"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine: --camaudit-device=cuda cannot run here")
def test_cuda_device_gives_the_cpu_verdicts(pytester, tmp_path):
    import cv2

    cv2.imwrite(str(pytester.path / "scene.png"), cv2.cvtColor(make_scene(20_000_004).image, cv2.COLOR_RGB2BGR))
    pytester.makepyfile(
        """
        def test_scene(camaudit):
            case = camaudit.audit("scene.png")
            det = case.detections[0]
            assert str(case.detector.device).startswith("cuda")
            case.assert_cam_mass(det, at_least=0.0, method="eigengradcam")
            case.assert_survives_without_context(det, max_drop=1.0)
        """
    )
    pytester.runpytest_subprocess("--camaudit-device=cuda").assert_outcomes(passed=1)


def test_automatic_batches_fit_the_device(shapes_detector):
    from pytest_camaudit.engine.engine import CPU_BATCH_PIXELS, DEFAULT_BATCH

    auto = CamEngine(shapes_detector)  # on the CPU
    assert auto.batch_for(160, 160) == DEFAULT_BATCH  # small images batch (1.31x measured)
    assert auto.batch_for(480, 640) == 1  # large ones do not pay on a CPU (0.65x on R50)
    assert auto.batch_for(256, 512) == CPU_BATCH_PIXELS // (256 * 512) == 2
    assert CamEngine(shapes_detector, batch_size=3).batch_for(480, 640) == 3  # an explicit size wins
    with pytest.raises(ValueError, match="at least 1"):
        CamEngine(shapes_detector, batch_size=0)


def test_the_option_reaches_the_engine(pytester):
    pytester.makepyfile(
        "def test_it(camaudit_cam_engine):\n"
        "    print('BATCH', camaudit_cam_engine.batch_size, camaudit_cam_engine.batch_for(480, 640))\n"
    )
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--camaudit-device=cpu")
    result.stdout.fnmatch_lines(["*BATCH None 1*"])
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--camaudit-device=cpu", "--camaudit-batch-size=4")
    result.stdout.fnmatch_lines(["*BATCH 4 4*"])
