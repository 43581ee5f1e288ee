"""Map maths on the calling thread: the thread count is 1 inside and restored after, errors included."""

from __future__ import annotations

import pytest
import torch

from pytest_camaudit.methods.threads import one_thread


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_the_block_runs_on_one_thread_and_the_count_comes_back(two_threads):
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_the_count_comes_back_when_the_block_raises(two_threads):
    with pytest.raises(ValueError, match="inside"), one_thread():
        raise ValueError("inside")
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("method", ["eigencam", "eigengradcam"])
def test_the_map_maths_runs_on_one_thread_the_model_on_the_users(method, two_threads, shapes_engine, scene_dir, monkeypatch):
    from pytest_camaudit.engine.images import load_image
    from pytest_camaudit.methods import eigencam, registry

    seen: dict[str, list[int]] = {"maths": [], "gradient": []}
    maths = eigencam.eigencam_component if method == "eigencam" else eigencam.eigengradcam
    name = maths.__name__

    def spy_maths(*args, **kwargs):
        seen["maths"].append(torch.get_num_threads())
        return maths(*args, **kwargs)

    monkeypatch.setattr(eigencam, name, spy_maths)
    analysis = shapes_engine.analyze(load_image(sorted(scene_dir.rglob("*.png"))[0]))
    gradients = analysis.gradients

    def spy_gradients(detection):
        seen["gradient"].append(torch.get_num_threads())
        return gradients(detection)

    monkeypatch.setattr(analysis, "gradients", spy_gradients)
    registry.cam_for(analysis, method, analysis.detections[0])
    assert seen["maths"] == [1]
    assert seen["gradient"] == ([] if method == "eigencam" else [2])
    assert torch.get_num_threads() == 2
