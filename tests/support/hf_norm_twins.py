"""Bright-spot twins, weights set by hand, for the transformers families whose levels end in a LayerNorm over channels.

RF-DETR and LW-DETR project their ViT tokens through a C2f block and a channel LayerNorm: a LayerNorm maps
a vector whose channels are all equal to zero, so the constant-weight twin of the other families
(:func:`support.hf.constant_weights`: every channel the brightness of its receptive field) has constant
levels. Here every channel tensor before a channel LayerNorm carries a *pattern*: channel ``c`` of
group ``c % 3`` (counted within each concatenated chunk) is, for group 0, a monotone function ``s`` of
the patch's brightness, for group 1 a constant ``p`` and for group 2 a smaller constant ``q``. A LayerNorm of
``[s…, p…, q…]`` with ``p ≠ q`` is ``t / sqrt(α t² + β)`` in its group-0 channels (``t`` = ``s`` less the mean of
the other channels, ``α, β > 0``): strictly increasing in ``s``. Each norm's affine puts the pattern back
(group 0 kept, scaled; groups 1 and 2 set to the constants ``+1`` and ``−1``; LW-DETR's inner norms are
batch norms, per channel, set the same way), each convolution averages group into group
(centre tap: no blur, no zero-padding border), and the level's last LayerNorm keeps group 0 only,
shifted so that a black cell is exactly 0. A level cell is then ``f(brightness of its patch)`` (LW-DETR's
stride-32 level: of its 2×2 patches) in its
group-0 channels with ``f`` increasing and ``f(black) = 0``, and 0 elsewhere: EigenCAM (rank one) is
``f`` itself.

The ViT layers are the identity (layer scales 0), position embeddings 0, and the processor does not
normalise (``do_normalize=False``: black pixels and the processor's zero padding are both 0; on a normalised
canvas the padding would read as mid grey, brighter than the black image, beside the spot near an edge).

**RF-DETR's twin has one window** (``num_windows=1``): transformers' RF-DETR window partition and
unpartition are inverse only on square patch grids (``RfDetrDinov2Embeddings.window_partition`` views
the grid as ``(windows, w / windows, windows, h / windows)``, the backbone's ``window_unpartition`` as
``(windows, windows, h / windows, w / windows)``); on a non-square canvas the feature map is the patch
tokens permuted, whatever the weights. The probe's processor keeps the aspect ratio (its canvas is
padded to the window grid by the family), so a windowed twin would test transformers' permutation,
not our geometry.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

SIGNAL, HIGH, LOW = 0, 1, 2
"""The three channel groups (``c % 3`` within a chunk): the brightness signal, constant +1, constant −1."""

SIGNAL_GAIN = 0.5
"""The signal's scale after each inner LayerNorm (whose signal channels lie in ``(−√2, √2)``): within ``(−0.71, 0.71)``,
where SiLU is increasing (above −1.28) and between the constants' images (SiLU(−1), SiLU(1)), so the next
LayerNorm is not saturated."""


def groups(channels: int, chunk: int | None = None) -> torch.Tensor:
    """``LongTensor[channels]``: each channel's group, ``(c mod chunk) mod 3`` (chunks are concatenated tensors)."""
    return (torch.arange(channels) % (chunk or channels)) % 3


def group_mean(conv: nn.Module, into: torch.Tensor, frm: torch.Tensor, taps: tuple[tuple[int, int], ...] | None = None) -> None:
    """Set ``conv`` (``Conv2d`` or ``ConvTranspose2d``) so that each output channel is the mean of the input
    channels of its group over ``taps`` (kernel positions; default the centre), bias 0."""
    transposed = isinstance(conv, nn.ConvTranspose2d)
    weight = conv.weight
    kh, kw = weight.shape[-2:]
    taps = taps or ((kh // 2, kw // 2),)
    match = (into[:, None] == frm[None, :]).to(weight.dtype)  # [out, in]
    match /= match.sum(1, keepdim=True).clamp_min(1.0) * (1 if transposed else len(taps))  # a transposed tap is one output pixel
    weight.zero_()
    for y, x in taps:
        weight[:, :, y, x] = match.T if transposed else match
    if conv.bias is not None:
        conv.bias.zero_()


def pattern_affine(norm: nn.Module, into: torch.Tensor, gain: float = SIGNAL_GAIN) -> None:
    """A LayerNorm's (or an eval-mode BatchNorm's) affine that keeps the signal (times ``gain``) and sets
    the constants: group 0 ``γ = gain, β = 0``, group 1 ``γ = 0, β = +1``, group 2 ``γ = 0, β = −1``."""
    norm.weight.copy_(gain * (into == SIGNAL).to(norm.weight.dtype))
    norm.bias.copy_(torch.tensor([0.0, 1.0, -1.0], dtype=norm.bias.dtype)[into])
    if getattr(norm, "running_mean", None) is not None:
        norm.running_mean.zero_()
        norm.running_var.fill_(1.0)


def pattern_conv_norm(layer: nn.Module, into: torch.Tensor, frm: torch.Tensor, taps: tuple[tuple[int, int], ...] | None = None) -> None:
    """A ``ConvNormLayer`` (convolution, channel norm, activation) carrying the pattern from ``frm`` to ``into``."""
    group_mean(layer.conv, into, frm, taps)
    pattern_affine(layer.norm, into, SIGNAL_GAIN if isinstance(layer.norm, nn.LayerNorm) else 1.0)


def pattern_c2f(c2f: nn.Module, frm: torch.Tensor) -> torch.Tensor:
    """RF-DETR's / LW-DETR's ``C2FLayer`` carrying the pattern from input groups ``frm``; returns its output's groups."""
    hidden = c2f.hidden_channels
    pattern_conv_norm(c2f.conv1, groups(2 * hidden, hidden), frm)
    for block in c2f.bottlenecks:
        pattern_conv_norm(block.conv1, groups(hidden), groups(hidden))
        pattern_conv_norm(block.conv2, groups(hidden), groups(hidden))
    out = groups(c2f.conv2.conv.out_channels)
    pattern_conv_norm(c2f.conv2, out, groups((2 + len(c2f.bottlenecks)) * hidden, hidden))
    return out


def _patch_embedding(projection: nn.Conv2d) -> torch.Tensor:
    """The patch convolution: group 0 the patch's mean pixel value, groups 1 and 2 the constants ±1."""
    into = groups(projection.out_channels)
    projection.weight.zero_()
    projection.weight[into == SIGNAL] = 1.0 / projection.weight[0].numel()
    projection.bias.copy_(torch.tensor([0.0, 1.0, -1.0])[into])
    return into


def _black_is_zero(encoder: nn.Module, finals: list[nn.Module], size: int) -> None:
    """Each level's last LayerNorm keeps the signal only, less its value on a black ``size``-pixel canvas."""
    seen: list[torch.Tensor] = []
    handles = [final.register_forward_pre_hook(lambda _m, args: seen.append(args[0][0, :, 0, 0])) for final in finals]
    try:
        encoder(torch.zeros(1, 3, size, size), torch.ones(1, size, size, dtype=torch.long))
    finally:
        for handle in handles:
            handle.remove()
    for final, level in zip(finals, seen, strict=True):
        into = groups(final.normalized_shape[0])
        black = nn.functional.layer_norm(level, final.normalized_shape, None, None, final.eps)
        final.weight.copy_((into == SIGNAL).to(final.weight.dtype))
        final.bias.copy_(torch.where(into == SIGNAL, -black, torch.zeros_like(black)))


def _identity_layers(layers: Any, scales: tuple[str, str]) -> None:
    """Each ViT layer the identity: its two residual branches' scales (``scales``: attribute names) set to 0."""
    for layer in layers:
        for name in scales:
            scale = getattr(layer, name)
            (scale.lambda1 if hasattr(scale, "lambda1") else scale).zero_()


@torch.no_grad()
def rf_detr_twin(model: nn.Module) -> nn.Module:
    """RF-DETR's bright-spot twin (module docstring): identity DINOv2 layers, the pattern through its projector."""
    encoder = model.model.backbone
    vit = encoder.backbone
    into = _patch_embedding(vit.embeddings.patch_embeddings.projection)
    vit.embeddings.position_embeddings.zero_()
    _identity_layers(vit.encoder.layer, ("layer_scale1", "layer_scale2"))
    pattern_affine(vit.layernorm, into)
    stages = len(vit.out_features)
    pattern_c2f(encoder.projector.projector_layer, groups(stages * into.numel(), into.numel()))
    _black_is_zero(encoder, [encoder.projector.layer_norm], vit.config.patch_size * vit.config.num_windows)
    return model


@torch.no_grad()
def lw_detr_twin(model: nn.Module) -> nn.Module:
    """LW-DETR's bright-spot twin (module docstring): identity ViT layers, the pattern through each scale's projector.

    Upsampling (×2) repeats a cell; downsampling (×½, a 3×3 stride-2 convolution) averages the 2×2 block
    it starts at (the ViT's patch grid is even: a multiple of the window count)."""
    encoder = model.model.backbone
    vit = encoder.backbone
    into = _patch_embedding(vit.embeddings.projection)
    vit.embeddings.position_embeddings.zero_()
    _identity_layers(vit.encoder.layer, ("gamma_1", "gamma_2"))
    for scale in encoder.projector.scale_layers:
        chunk = into.numel()
        for sampling in scale.sampling_layers:
            for layer in sampling.layers:
                if isinstance(layer, nn.ConvTranspose2d):
                    chunk = layer.out_channels
                    group_mean(layer, groups(chunk), into, ((0, 0), (0, 1), (1, 0), (1, 1)))
                else:
                    chunk = layer.conv.out_channels
                    pattern_conv_norm(layer, groups(chunk), into, ((1, 1), (1, 2), (2, 1), (2, 2)))
        pattern_c2f(scale.projector_layer, groups(len(scale.sampling_layers) * chunk, chunk))
    _black_is_zero(encoder, [scale.layer_norm for scale in encoder.projector.scale_layers],
                   vit.config.patch_size * vit.config.num_windows_side * 2)
    return model
