"""Tiny random transformers detectors (DETR, RT-DETR), built offline from configs, for the HF tests.

Importing this skips the importing test module where transformers is not installed; it imports
transformers the way the plugin does (:func:`import_transformers`: Hub offline, environment left
alone, so other tests still see the user's ``HF_HUB_OFFLINE``). Each builder is cached: one model
per process, a few hundred thousand parameters, small image processors (DETR: short side 320,
RT-DETR: 320×320) so that a forward takes well under a second on two cores.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch

from pytest_camaudit.detectors.base import Detector
from pytest_camaudit.detectors.transformers.folders import hf_detector
from pytest_camaudit.detectors.transformers.runtime import import_transformers
from pytest_camaudit.errors import ModelLoadError

try:
    hf = import_transformers()
except ModelLoadError as exc:
    pytest.skip(str(exc), allow_module_level=True)

import safetensors.torch  # noqa: F401  (a compiled extension: imported before any pytester run, as the snapshot needs)

LABELS = ("cat", "dog", "car", "tree", "person")
"""The models' ``id2label`` (ids 0..4): the plugin's labels 1..5."""


def _labels() -> dict:
    return {"id2label": dict(enumerate(LABELS)), "label2id": {n: i for i, n in enumerate(LABELS)}}


def make_selective(model: torch.nn.Module) -> torch.nn.Module:
    """Random DETR queries are all alike (zero inputs, near-uniform cross-attention); spread them."""
    with torch.no_grad():
        model.model.query_position_embeddings.weight.normal_(0.0, 1.0)
        for layer in model.model.decoder.layers:
            layer.encoder_attn.q_proj.weight.mul_(10.0)
            layer.encoder_attn.k_proj.weight.mul_(10.0)
    return model


def constant_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Every convolution averages its window, every batch norm is the identity: each feature cell is
    the (monotone) brightness of its receptive field, so a bright spot peaks where it is."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif hasattr(m, "running_mean") and hasattr(m, "weight"):
                m.weight.fill_(1.0)
                m.bias.zero_()
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return model


def detr_config(**overrides) -> hf.DetrConfig:
    backbone = hf.ResNetConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], embedding_size=16, layer_type="basic",
                               out_features=["stage4"])
    kw = dict(backbone_config=backbone, use_timm_backbone=False, attn_implementation="eager", d_model=64, encoder_layers=2,
              decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
              num_queries=20, **_labels())
    kw.update(overrides)
    return hf.DetrConfig(**kw)


def rtdetr_config(**overrides) -> hf.RTDetrConfig:
    backbone = hf.RTDetrResNetConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], embedding_size=16, layer_type="basic",
                                     out_indices=[2, 3, 4])
    kw = dict(backbone_config=backbone, encoder_in_channels=[32, 64, 128], encoder_hidden_dim=64, d_model=64, hidden_expansion=0.5,
              decoder_layers=2, decoder_in_channels=[64, 64, 64], encoder_ffn_dim=128, decoder_ffn_dim=128, num_queries=30,
              encoder_attention_heads=4, decoder_attention_heads=4, attn_implementation="eager", **_labels())
    kw.update(overrides)
    return hf.RTDetrConfig(**kw)


@functools.cache
def tiny_detr(seed: int = 0) -> torch.nn.Module:
    """A random DETR whose queries differ (eval mode)."""
    torch.manual_seed(seed)
    return make_selective(hf.DetrForObjectDetection(detr_config()).eval())


@functools.cache
def tiny_rtdetr(seed: int = 0) -> torch.nn.Module:
    """A random RT-DETR (its queries are the top encoder cells: distinct by construction)."""
    torch.manual_seed(seed)
    return hf.RTDetrForObjectDetection(rtdetr_config()).eval()


@functools.cache
def model(family: str) -> torch.nn.Module:
    """The tiny random model of ``family`` (a family name: ``"detr"``, ``"rt-detr"``, ``"d-fine"``…), eval mode."""
    if family == "detr":
        return tiny_detr()
    if family == "rt-detr":
        return tiny_rtdetr()
    from support.hf_types import TYPES

    torch.manual_seed(0)
    return TYPES[family].build()


@functools.cache
def probe(family: str) -> torch.nn.Module:
    """Constant-weight twin of the tiny model (one encoder / decoder layer; RT-DETR without its AIFI layer)."""
    torch.manual_seed(0)
    if family == "detr":
        return constant_weights(hf.DetrForObjectDetection(detr_config(encoder_layers=1, decoder_layers=1)).eval())
    if family == "rt-detr":
        return constant_weights(hf.RTDetrForObjectDetection(rtdetr_config(encoder_layers=0, decoder_layers=1)).eval())
    from support.hf_types import TYPES

    return TYPES[family].spot_twin()


def processor(family: str):
    """The small image processor of ``family``."""
    if family == "detr":
        return hf.DetrImageProcessor(size={"shortest_edge": 320, "longest_edge": 512})
    if family == "rt-detr":
        return hf.RTDetrImageProcessor(size={"height": 320, "width": 320})
    from support.hf_types import TYPES

    return TYPES[family].processor()


def spot_processor(family: str):
    """The image processor of ``family``'s bright-spot twin (:func:`probe`): its small processor unless its type names another."""
    from support.hf_types import TYPES

    spot = TYPES[family].spot_processor if family in TYPES else None
    return spot() if spot is not None else processor(family)


def noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    """``uint8 [h, w, 3]`` uniform noise."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@functools.cache
def median_score(family: str) -> float:
    """A threshold that keeps about half of the candidate rows (random weights score evenly), on 203×317 noise:
    the median score of every row the family's query rule gives at threshold -1."""
    detector = hf_detector(model(family), processor(family), threshold=0.0)
    fam = detector.family
    with torch.no_grad():
        x = fam.inputs(fam.image_processor(), [torch.from_numpy(noise(203, 317)).permute(2, 0, 1).contiguous()], detector.model)
        logits = detector.model(**x).logits[0]
    return float(fam.query_rule.rows(logits, -1.0)[2].median())


@functools.cache
def tiny_detector(family: str) -> Detector:
    """The tiny model of ``family`` with its small processor, thresholded at :func:`median_score`."""
    return hf_detector(model(family), processor(family), threshold=median_score(family), name=f"tiny-{family}")


def full_graph_gradients(detector: Detector, image: np.ndarray, query: int, label: int,
                         shapes: list[tuple[int, ...]] | None = None) -> list[torch.Tensor]:
    """``d logits[0, query, label] / d level`` through one autograd forward of the whole model (a level
    that is a token sequence, YOLOS', is laid on its grid: ``shapes`` are the levels' ``(C, h, w)``)."""
    model, family = detector.model, detector.family
    x = family.inputs(family.image_processor(), [torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)], model)
    leaves: dict[int, torch.Tensor] = {}

    def leaf(i):
        def hook(_m, _i, out):
            leaves[i] = out.detach().requires_grad_(True)
            return leaves[i]

        return hook

    handles = [m.register_forward_hook(leaf(i)) for i, m in enumerate(family.level_modules(model))]
    try:
        with torch.enable_grad():
            out = model(**x)  # PP-DocLayoutV2 permutes its queries into out.logits: its decoder's own order
            logits = out.intermediate_logits[:, -1] if family.name == "pp-doclayout-v2" else out.logits
    finally:
        for handle in handles:
            handle.remove()
    grads = [g[0] for g in torch.autograd.grad(logits[0, query, label], [leaves[i] for i in sorted(leaves)])]
    if shapes is not None:  # [1 + HW + D, C] tokens -> [C, h, w]
        grads = [g[1 : 1 + s[1] * s[2]].t().reshape(s) if g.dim() == 2 else g for g, s in zip(grads, shapes, strict=True)]
    return grads


def _double(value):
    if isinstance(value, torch.Tensor):
        return value.double() if value.is_floating_point() else value
    if isinstance(value, (list, tuple)):
        return type(value)(_double(v) for v in value)
    return value


def _rms_norm64(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return m.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + m.variance_epsilon))


def directional_derivatives(detector: Detector, analysis, detection, gradients: list[torch.Tensor], eps: float = 1e-3) -> tuple[float, float, float]:
    """``(finite difference, <gradient, direction>, scale)`` along a random direction of every level, in float64.

    The direction of each level is scaled by its largest magnitude. The finite difference is the family's replay (the transformer from the captured levels, with the
    recorded arguments) run in float64 at ``levels ± eps * direction``; no autograd is involved, so a
    wrong backward (torch 2.14.1's BatchNorm bug behind a permute) shows here even when the replay and
    the full graph agree. ``scale`` is ``sum |gradient * direction|`` (the bound the difference is judged on).
    """
    import copy

    family, capture = detector.family, analysis.capture
    model = copy.deepcopy(detector.model).double()
    for m in model.modules():  # RMSNorms compute in float32 whatever the input (DEIMv2's decoder): keep float64
        if type(m).__name__.endswith("RMSNorm") and hasattr(m, "variance_epsilon"):
            m.forward = functools.partial(_rms_norm64, m)
    names = {id(m): n for n, m in detector.model.named_modules()}  # recorded modules (PP-DocLayoutV3's heads): the copy's
    calls = {n: {k: model.get_submodule(names[id(v)]) if isinstance(v, torch.nn.Module) else _double(v) for k, v in kw.items()}
             for n, kw in capture.memo["calls"].items()}
    generator = torch.Generator().manual_seed(0)
    # each level's direction at the level's own scale (random models may carry maps of magnitude 1e-13)
    directions = [torch.randn(v.shape, generator=generator, dtype=torch.float64) * max(float(v.abs().max()), 1e-30)
                  for v in capture.levels.values()]
    query = family.query_of(capture, detection)

    def f(t: float) -> float:
        levels = type(capture.levels)((k, v.double() + t * d) for (k, v), d in zip(capture.levels.items(), directions, strict=True))
        shifted = dataclasses.replace(capture, levels=levels, memo={**capture.memo, "calls": calls}, graphs={})
        return float(family.replay(model, shifted, False).logits[0, query, detection.label - 1].detach())

    fd = (f(eps) - f(-eps)) / (2 * eps)
    analytic = sum(float((g.double() * d).sum()) for g, d in zip(gradients, directions, strict=True))
    scale = sum(float((g.double() * d).abs().sum()) for g, d in zip(gradients, directions, strict=True))
    return fd, analytic, scale
