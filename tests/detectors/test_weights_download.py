"""Weights enum names download once into the torch hub cache, like torchvision does; --camaudit-offline forbids it.

No internet here: a state dict is served from a local HTTP server on 127.0.0.1 and the weights'
URL is pointed at it; a socket guard fails any other connection.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision.models.detection as tvd
from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights

from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.errors import ModelLoadError

BUILDER = "ssdlite320_mobilenet_v3_large"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, dict[str, torch.Tensor]]]:
    """``(url, state dict)``: a random-weight SSDlite state dict on a local server, named with its hash like torchvision's files."""
    folder = tmp_path_factory.mktemp("served")
    torch.manual_seed(0)
    state = tvd.ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None).state_dict()
    tmp = folder / "tmp.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    name = f"ssdlite-test-{digest[:10]}.pth"
    tmp.rename(folder / name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{name}", state
    server.shutdown()
    server.server_close()


@pytest.fixture
def local_only(monkeypatch):
    """Connections to anything but 127.0.0.1 fail the test."""
    real = socket.socket.connect

    def connect(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"network access attempted: {address}")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def weights_at(monkeypatch, tmp_path, served, local_only):
    """The COCO_V1 weights point at the local server; the torch hub cache is an empty folder."""
    url, state = served
    monkeypatch.setattr(SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.value, "url", url)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # it also means --camaudit-offline; these tests download
    return tmp_path / "torch" / "hub" / "checkpoints" / Path(url).name, state


def test_an_enum_name_downloads_once_into_the_cache_then_works_offline(weights_at):
    cached, state = weights_at
    detector = load_detector(BUILDER, "COCO_V1", "cpu")
    assert cached.is_file()
    assert all(torch.equal(detector.model.state_dict()[k], v) for k, v in state.items())
    assert detector.class_names[1] == "person"
    again = load_detector(BUILDER, "COCO_V1", "cpu", offline=True)  # from the cache, no download
    assert again.identity == detector.identity


def test_offline_without_the_file_says_where_it_is_expected(weights_at):
    cached, _ = weights_at
    with pytest.raises(ModelLoadError) as err:
        load_detector(BUILDER, "COCO_V1", "cpu", offline=True)
    assert str(cached) in str(err.value) and "--camaudit-offline" in str(err.value)
    assert not cached.exists()


def test_a_failed_download_says_what_to_do(weights_at, monkeypatch, served):
    url, _ = served
    monkeypatch.setattr(SSDLite320_MobileNet_V3_Large_Weights.COCO_V1.value, "url", url.replace(".pth", "-missing.pth"))
    with pytest.raises(ModelLoadError, match="could not download weights .* copy the file there yourself") as err:
        load_detector(BUILDER, "COCO_V1", "cpu")
    response = err.value.__cause__
    assert isinstance(response, urllib.error.HTTPError) and response.code == 404
    assert response.fp.closed  # its socket closed now, not by whichever later test's garbage collection finds it


def test_through_pytest_the_first_run_downloads_and_an_offline_run_reuses(pytester, weights_at):
    cached, _ = weights_at
    pytester.makepyfile(
        """
        def test_model(camaudit_detector):
            assert camaudit_detector.name == "ssdlite320_mobilenet_v3_large"
        """
    )
    args = [f"--camaudit-model={BUILDER}", "--camaudit-weights=COCO_V1", "--camaudit-device=cpu"]
    pytester.runpytest(*args, "--camaudit-offline").assert_outcomes(errors=1)
    assert not cached.exists()
    pytester.runpytest(*args).assert_outcomes(passed=1)
    assert cached.is_file()
    pytester.runpytest(*args, "--camaudit-offline").assert_outcomes(passed=1)
