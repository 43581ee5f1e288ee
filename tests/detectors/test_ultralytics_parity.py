"""Parity with ultralytics' own heatmap, ``predict(visualize=True)`` (``ultralytics.utils.plotting.class_activation_map``,
first released in ultralytics 8.4.113; 8.4.126-8.4.150 made end-to-end-capable heads follow ``end2end``).

ultralytics' map, per image: one autograd forward from the letterboxed canvas; every anchor's best
class logit ``s``; the predictions with ``sigmoid(s) >= conf`` (else the single best), the ``topk = 16``
largest; per prediction ``d s / d level`` for the ``Detect`` head's input levels *as intermediate
tensors* (so through the neck: P3 feeds P4, P4 feeds P5); per level LayerCAM ``relu(sum_c relu(g) a)``,
bilinear to the canvas, divided by its max; the maximum over levels, then over predictions; ``x 255``,
``.byte()``, then JET and a 50 % blend into ``<image>_cam.jpg``. The map is read before the blend, in a
subprocess (``predict()`` resets torch's thread count), by wrapping ``cv2.applyColorMap``.

Ours: the same prediction set, each anchor's class logit differentiated by the family's box-local
path (its classification branch on the 5x5 window of its own level: the *partial* derivative), LayerCAM
per level by grad-cam's ``LayerCAM.get_cam_image``, combined as above. On ``shapes-yolo`` every
explained prediction is a P3 anchor, where partial and total derivatives coincide: r = 1.0000 measured
(12 scenes and crops). On a YOLO whose predictions sit on P4 / P5 the neck's paths add P3 (and P4)
maps ours leaves out (r 0.93-0.98 on a random yolo11n at 320); the second test shows that this is the
only difference: with the neck replayed (:class:`NeckReplay`) our gradients give ultralytics' map.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support.network import block_network
from support.yolo import SCENE, noise, random_yolo  # first: skips this module where ultralytics is not installed
from ultralytics.utils import plotting

from pytest_camaudit.datatypes import Detection
from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.loading import load_detector
from pytest_camaudit.detectors.ultralytics.head import classification_branches, window_logit, window_of
from pytest_camaudit.detectors.ultralytics.runtime import letterbox, model_stride
from pytest_camaudit.detectors.ultralytics.yolo import yolo_detector
from pytest_camaudit.engine.engine import CamEngine
from pytest_camaudit.engine.images import load_image
from pytest_camaudit.methods.gradient import level_cams

pytestmark = pytest.mark.skipif(not hasattr(plotting, "class_activation_map"),
                                reason="this ultralytics has no class_activation_map (predict(visualize=True) heatmaps): 8.4.113 or later")

CONF, TOPK = 0.25, 16
"""``predict()``'s default ``conf`` and ``class_activation_map``'s default ``topk``."""

VISUALIZE = textwrap.dedent("""
    import sys, cv2, numpy as np
    from ultralytics import YOLO
    ckpt, out, imgsz, paths = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    maps, colour = [], cv2.applyColorMap
    cv2.applyColorMap = lambda c, cmap: (maps.append(np.array(c)), colour(c, cmap))[1]  # the uint8 map, before the blend
    model = YOLO(ckpt)
    for path in paths:
        model.predict(source=path, visualize=True, imgsz=imgsz, conf={conf}, project=sys.argv[2] + ".runs", name="v", exist_ok=True,
                      verbose=False)
    np.savez(out, *maps)
""").format(conf=CONF)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    block_network(monkeypatch)


def ultralytics_maps(net: torch.nn.Module, paths: list[Path], imgsz: int, tmp_path: Path) -> list[np.ndarray]:
    """``float64 [Hc, Wc]`` in ``[0, 1]`` per image: ultralytics' own map on the letterboxed canvas."""
    ckpt, out = tmp_path / "model.pt", tmp_path / "maps.npz"
    torch.save({"model": net, "train_args": {"imgsz": imgsz, "task": "detect"}}, ckpt)  # ultralytics' checkpoint layout, fp32
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "0", "YOLO_CONFIG_DIR": str(tmp_path / "settings"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", VISUALIZE, str(ckpt), str(out), str(imgsz), *map(str, paths)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = np.load(out)
    return [data[f"arr_{i}"].astype(np.float64) / 255 for i in range(len(paths))]


def prediction_set(logits: list[torch.Tensor]) -> list[tuple[int, int, int, int]]:
    """``(level, y, x, class)`` of class_activation_map's predictions, from the branches' logits ``[1, nc, h, w]``."""
    s_all = torch.cat([t[0].flatten(1) for t in logits], 1)  # [nc, A], level after level as Detect concatenates
    s, cls = s_all.amax(0), s_all.argmax(0)
    keep = (s.sigmoid() >= CONF) | (s == s.amax())
    order = s.masked_fill(~keep, float("-inf")).argsort(descending=True)[: min(int(keep.sum()), TOPK)]
    sizes = [t.shape[-2] * t.shape[-1] for t in logits]
    out = []
    for a in order.tolist():
        level = next(i for i in range(len(sizes)) if a < sum(sizes[: i + 1]))
        y, x = divmod(a - sum(sizes[:level]), logits[level].shape[-1])
        out.append((level, y, x, int(cls[a])))
    return out


def combine(per_prediction: list[list[torch.Tensor]], canvas: tuple[int, int]) -> np.ndarray:
    """ultralytics' combination of ``[h, w]`` level maps: clamp, bilinear to the canvas, / level max, max, max."""
    cam = torch.zeros(1, 1, *canvas)
    for levels in per_prediction:
        ups = [F.interpolate(c.clamp(min=0)[None, None], canvas, mode="bilinear", align_corners=False) for c in levels]
        cam = torch.maximum(cam, torch.stack([u / u.amax((2, 3), keepdim=True).clamp(min=1e-7) for u in ups]).amax(0))
    return cam[0, 0].numpy().astype(np.float64)


def our_map(detector: Detector, image: np.ndarray, through_neck: bool = False) -> np.ndarray:
    """Our per-box LayerCAM of class_activation_map's predictions, combined its way, on the letterboxed canvas."""
    analysis = CamEngine(detector, cache_size=1).analyze(load_image(image))
    capture, family = analysis.capture, detector.family
    logits, _ = capture.memo["trace"]
    names = list(capture.levels)
    cells = prediction_set(logits)
    capture.memo["cells"] = [(names[i], i, y, x) for i, y, x, _ in cells]  # the family traces these anchors
    replay = NeckReplay(family.network(detector.model), analysis) if through_neck else None
    layercam = level_cams()["layercam"]
    per_prediction = []
    for k, (i, y, x, c) in enumerate(cells):
        if replay is None:
            grads = family.box_gradients(detector, capture, Detection(k, (0.0, 0.0, 1.0, 1.0), c + 1, "", 0.5))
            assert grads is not None
        else:
            grads = dict(zip(names, replay.gradients(i, y, x, c), strict=True))
        per_prediction.append([torch.from_numpy(layercam(capture.levels[n][None].numpy(), grads[n][None].numpy())) for n in names])
    return combine(per_prediction, analysis.geometry.padded)


class NeckReplay:
    """The layers from the first head input to the head re-run on a capture's tensors, with a zero shift
    added to each head input: the gradient w.r.t. a shift is the total derivative w.r.t. that level."""

    def __init__(self, net: torch.nn.Module, analysis) -> None:
        layers, self.head = list(net.model), net.model[-1]
        first = min(self.head.f)
        outputs = self._outputs(net, analysis, first)
        self.shifts = {j: torch.zeros_like(outputs[j], requires_grad=True) for j in self.head.f}
        with torch.enable_grad():
            x = outputs[first] = outputs[first] + self.shifts[first]
            for i in range(first + 1, len(layers) - 1):
                f = layers[i].f
                x = layers[i](x if f == -1 else outputs[f] if isinstance(f, int) else [x if j == -1 else outputs[j] for j in f])
                outputs[i] = x = x + self.shifts[i] if i in self.shifts else x
        self.levels = [outputs[j] for j in self.head.f]
        assert all(torch.equal(v[0].detach(), w) for v, w in zip(self.levels, analysis.levels.values(), strict=True))

    @staticmethod
    def _outputs(net, analysis, first: int) -> dict[int, torch.Tensor]:
        """The head inputs and the earlier outputs the replayed layers read, from one more no-grad forward."""
        keep = set(net.model[-1].f) | {j for m in list(net.model)[first + 1 : -1] for j in ([m.f] if isinstance(m.f, int) else m.f) if 0 <= j < first}
        outputs: dict[int, torch.Tensor] = {}
        hooks = [net.model[j].register_forward_hook(lambda _m, _i, out, j=j: outputs.__setitem__(j, out.detach())) for j in keep]
        try:
            image = analysis.image.pixels
            with torch.no_grad():
                net(torch.from_numpy(letterbox(image, analysis.geometry.padded, model_stride(net))).permute(2, 0, 1)[None].float() / 255)
        finally:
            for hook in hooks:
                hook.remove()
        return outputs

    def gradients(self, level: int, y: int, x: int, cls: int) -> list[torch.Tensor]:
        branch = classification_branches(self.head)[level]
        y0, y1, x0, x1 = window_of(branch, self.levels[level].shape, y, x)
        with torch.enable_grad():
            logit = window_logit(branch, self.levels[level][:, :, y0:y1, x0:x1], (y - y0, x - x0), cls)[0]
        shifts = list(self.shifts.values())
        grads = torch.autograd.grad(logit, shifts, retain_graph=True, allow_unused=True)  # a P3 anchor reads no later level
        return [(g if g is not None else torch.zeros_like(t))[0] for g, t in zip(grads, shifts, strict=True)]


def scenes(tmp_path: Path) -> list[Path]:
    """The example scene (160x160) and two crops the letterbox pads (160x140 -> 160x160, 137x157 -> 160x160)."""
    pixels = load_image(SCENE).pixels
    paths = [SCENE]
    for name, crop in (("wide", pixels[:, 10:150]), ("odd", pixels[13:150, 2:159])):
        paths.append(tmp_path / f"{name}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2BGR))
    return paths


@pytest.mark.slow
def test_our_per_box_layercam_combined_as_ultralytics_combines_is_its_heatmap(tmp_path):
    zoo = load_detector("shapes-yolo", device="cpu")
    paths = scenes(tmp_path)
    theirs = ultralytics_maps(zoo.family.network(zoo.model), paths, 160, tmp_path)
    for path, ref in zip(paths, theirs, strict=True):
        ours = our_map(zoo, load_image(path).pixels)
        assert ours.shape == ref.shape, f"expected ultralytics' letterboxed canvas {ref.shape}, got {ours.shape} for {path.name}"
        r = float(np.corrcoef(ours.ravel(), ref.ravel())[0, 1])
        print(f"shapes-yolo, {path.name} ({ref.shape[0]}x{ref.shape[1]} canvas): r = {r:.5f}")
        assert r >= 0.95, f"expected r >= 0.95 against ultralytics' own heatmap of {path.name}, got {r:.4f}"


@pytest.mark.slow
def test_on_p4_and_p5_predictions_ultralytics_adds_the_necks_paths_and_nothing_else(tmp_path):
    net = random_yolo("yolo11n")  # random: its top predictions sit on P3 and P4
    detector = yolo_detector(net, imgsz=320)
    path = tmp_path / "noise.png"
    cv2.imwrite(str(path), noise(203, 317, seed=3))
    (ref,) = ultralytics_maps(net, [path], 320, tmp_path)
    image = load_image(path).pixels
    box_local = float(np.corrcoef(our_map(detector, image).ravel(), ref.ravel())[0, 1])
    r = float(np.corrcoef(our_map(detector, image, through_neck=True).ravel(), ref.ravel())[0, 1])
    print(f"random yolo11n at 320: r = {box_local:.5f} box-local, {r:.5f} with the neck replayed")
    assert r >= 0.99, f"expected r >= 0.99 with the neck replayed, got {r:.4f} (box-local alone: {box_local:.4f})"
