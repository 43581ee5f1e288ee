"""The hand-set bright-spot twins of RF-DETR and LW-DETR (``support.hf_norm_twins``), checked on their own.

The contract suite's bright-spot test uses them; here the property it rests on: each level cell is an
increasing function of its patch's brightness, exactly 0 on black, the same in every signal channel and 0
in the others (so EigenCAM is that function). And the transformers fact that gives RF-DETR's twin one window.
"""

from __future__ import annotations

import pytest
import torch
from support import hf  # skips this module where transformers is not installed
from support.hf_norm_twins import SIGNAL, groups

BRIGHTNESS = (0.0, 0.02, 0.1, 0.3, 0.6, 1.0)
"""Pixel values of uniform images (the twins' processors do not normalise: black is 0)."""


def _levels(family: str, value: float) -> list[torch.Tensor]:
    """The levels (``FloatTensor[C, h, w]`` each) of ``family``'s twin on a uniform 224×448 canvas of ``value``."""
    encoder = hf.probe(family).model.backbone
    with torch.no_grad():
        out = encoder(torch.full((1, 3, 224, 448), value), torch.ones(1, 224, 448, dtype=torch.long))
    return [out[0][0]] if family == "rf-detr" else [level[0] for level, _ in out]


@pytest.mark.parametrize("family", ["rf-detr", "lw-detr"])
def test_a_twin_level_is_zero_on_black_and_increasing_in_brightness(family):
    per_value = [_levels(family, v) for v in BRIGHTNESS]
    for i in range(len(per_value[0])):
        signal = groups(per_value[0][i].shape[0]) == SIGNAL
        cells = []
        for levels in per_value:
            level = levels[i]
            assert level[~signal].abs().max() <= 1e-6, "channels outside the signal group must be 0"
            assert torch.allclose(level[signal], level[signal][0].expand_as(level[signal]), atol=1e-6), "a uniform image gives one value"
            cells.append(float(level[signal][0, 0, 0]))
        assert abs(cells[0]) <= 1e-6, f"black must be 0, got {cells[0]}"
        steps = [b - a for a, b in zip(cells, cells[1:], strict=False)]
        assert min(steps) > 1e-5, f"level {i} is not increasing in brightness: {dict(zip(BRIGHTNESS, cells, strict=True))}"


@pytest.mark.parametrize(("h", "w", "inverse"), [(8, 8, True), (8, 12, False), (12, 8, False)])
def test_rf_detr_window_partition_is_inverted_only_on_square_patch_grids(h, w, inverse):
    """Why RF-DETR's twin has one window: transformers' window partition and unpartition permute a non-square grid."""
    from transformers.models.rf_detr import modeling_rf_detr as rf

    config = hf.hf.RfDetrDinov2Config(hidden_size=6, num_hidden_layers=1, num_attention_heads=3, image_size=224, patch_size=1,
                                      num_windows=2)
    tokens = torch.arange(h * w, dtype=torch.float).view(1, h * w, 1).expand(1, h * w, 6)
    windows = rf.RfDetrDinov2Embeddings(config).window_partition(torch.cat([torch.zeros(1, 1, 6), tokens], 1), h, w)
    grid = rf.RfDetrDinov2Backbone(config).window_unpartition(windows[:, 1:], h, w).reshape(h * w, 6)[:, 0]
    assert torch.equal(grid, tokens[0, :, 0]) is inverse, (
        "transformers' RF-DETR window unpartition now inverts its partition on non-square grids: give the spot twin "
        "(support.hf_norm_twins) its windows back and correct docs/families/transformers.md" if not inverse else
        "the window partition no longer round-trips a square grid")
