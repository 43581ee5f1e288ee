"""Attention relevance (Chefer, Gur & Wolf, ICCV 2021) as a per-box CAM for transformer detectors.

The relevance of each image token for one detection — gradient-weighted attention rolled out
through the encoder's self-attention and the decoder's self- and cross-attention — on the cells of
the target layer. The detector's family supplies the attention maps and the detection's score
(:meth:`~pytest_camaudit.detectors.family.Family.attention_maps`: the DETR family,
:mod:`pytest_camaudit.detectors.transformers.detr`); the maths is here, and the map is brought onto
the image's pixels like every other: onto the analysis's common grid, then through the resize and
padding (:mod:`pytest_camaudit.engine.alignment`), clipped and scaled to 1.

**Attention relevance** (Chefer, Gur & Wolf, ICCV 2021, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers", eqs. 1–10; reference code
``hila-chefer/Transformer-MM-Explainability``, ``DETR/modules/ExplanationGenerator.py``,
``generate_ours(use_lrp=False)``). One backward of the query's class logit to every attention map
gives ``Ā = E_h[(∇A ⊙ A)⁺]`` per layer (eq. 5); with ``R_ii = I`` (image tokens), ``R_qq = I``
(queries), ``R_qi = 0``:

* encoder self-attention, each layer: ``R_ii += Ā R_ii`` (eq. 6);
* decoder, each layer: ``R_qq += Ā R_qq`` and ``R_qi += Ā R_qi`` (eqs. 6, 7), then the
  cross-attention ``R_qi += R̄_qqᵀ Ā R̄_ii`` with ``R̄ = rownorm(R - I) + I`` (eqs. 8–10);
* the answer is row ``query`` of ``R_qi``, one value per cell of the target layer.

A single-stream detector (YOLOS: detection tokens appended to a ViT's sequence, no decoder) has only
eq. 6: ``R = Π_l (I + Ā_l)`` over the whole sequence, and the answer is the detection token's row
over the image tokens' columns (:func:`self_attention_rule`, as Chefer et al. do for a ViT).

:func:`relevance_rules` computes that row without ``HW × HW`` products: ``R_ii`` enters only through
its row sums and one row vector times it, both chains of vector-matrix products (``O(L·HW²)``
instead of ``O(L·HW³)``; equal to the literal recursion to float32 precision). Rows that
sum to zero (padding cells, which nothing reads) stay zero where the reference divides by zero.

A family without attention maps over image tokens raises a
:class:`~pytest_camaudit.errors.DetectorRuntimeError` that names the methods to use instead.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import torch

from ..datatypes import CamMap, Detection
from ..detectors.family import AttentionMaps
from ..errors import DetectorRuntimeError
from .maps import normalise

if TYPE_CHECKING:
    from ..engine.analysis import ImageAnalysis


def attention_bars(maps: AttentionMaps) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Eq. 5 per layer, from one backward of the detection's score (``maps.score``) to every attention map.

    Returns ``(encoder Ā [HW, HW], decoder self Ā [Q, Q], cross Ā [Q, HW])`` per layer, each
    ``E_h[(∇A ⊙ A)⁺]`` (head mean of the positive part of gradient times attention).
    """
    groups = [maps.encoder, maps.decoder, maps.cross]
    flat = [a for g in groups for a in g]
    grads = torch.autograd.grad(maps.score, flat, retain_graph=True)
    bars = [(g * a.detach()).clamp_min(0).mean(dim=1)[0] for a, g in zip(flat, grads, strict=True)]
    n_enc, n_dec = len(groups[0]), len(groups[1])
    return bars[:n_enc], bars[n_enc : n_enc + n_dec], bars[n_enc + n_dec :]


def _rownorm(r_hat: torch.Tensor) -> torch.Tensor:
    """Eqs. 8–9: each row divided by its sum; rows summing to zero stay zero."""
    s = r_hat.sum(-1, keepdim=True)
    return torch.where(s > 0, r_hat / s.clamp_min(1e-30), torch.zeros_like(r_hat))


def relevance_rules(encoder: list[torch.Tensor], decoder: list[torch.Tensor], cross: list[torch.Tensor], query: int) -> torch.Tensor:
    """Row ``query`` of Chefer et al.'s ``R_qi``: ``FloatTensor[HW]`` relevance of each image token.

    Args:
        encoder: per encoder layer, ``Ā`` ``[HW, HW]`` of its self-attention.
        decoder: per decoder layer, ``Ā`` ``[Q, Q]`` of its self-attention.
        cross: per decoder layer, ``Ā`` ``[Q, HW]`` of its cross-attention.
        query: the explained query.

    ``row_q(R_qi) = Σ_l e_qᵀ P_l R̄_qq,lᵀ Ā_l R̄_ii`` with ``P_l = Π_{m>l}(I + Ā_self,m)`` and
    ``vᵀ R̄_ii = uᵀ R_ii - uᵀ + vᵀ`` for ``u = v / rowsum(R_ii - I)``, ``R_ii = Π (I + Ā_enc)``.
    In float64: ``R - I`` subtracts 1 from diagonals near 1, which leaves float32 ~1e-3 relative.
    """
    encoder, decoder, cross = ([a.double() for a in group] for group in (encoder, decoder, cross))
    n_q, n_tok = cross[0].shape
    eye_q = torch.eye(n_q, dtype=cross[0].dtype, device=cross[0].device)
    r_qq, terms = eye_q, []
    for a_self, a_cross in zip(decoder, cross, strict=True):
        r_qq = r_qq + a_self @ r_qq
        terms.append((_rownorm(r_qq - eye_q) + eye_q).t() @ a_cross)
    p = torch.zeros(n_q, dtype=eye_q.dtype, device=eye_q.device)
    p[query] = 1.0
    v = torch.zeros(n_tok, dtype=eye_q.dtype, device=eye_q.device)
    for layer in range(len(terms) - 1, -1, -1):
        v = v + p @ terms[layer]
        p = p + p @ decoder[layer]
    rows = torch.ones_like(v)  # R_ii 1: factors applied right to left, (I + Ā_1) first
    for a in encoder:
        rows = rows + a @ rows
    d = rows - 1.0
    u = torch.where(d > 0, v / d.clamp_min(1e-30), torch.zeros_like(v))
    u_r = u.clone()  # uᵀ R_ii: factors applied left to right, (I + Ā_L) first
    for a in reversed(encoder):
        u_r = u_r + u_r @ a
    return (u_r - u + v).float()



def self_attention_rule(encoder: list[torch.Tensor], row: int, tokens: slice) -> torch.Tensor:
    """Row ``row`` of ``R = Π_l (I + Ā_l)`` (eq. 6 alone, as Chefer et al. do for a ViT) over the columns
    ``tokens``: ``FloatTensor[HW]``, for a single-stream transformer (YOLOS: detection tokens in the
    encoder's sequence). ``encoder``: per layer ``Ā`` ``[N, N]`` over the whole sequence, first layer first."""
    v = torch.zeros(encoder[0].shape[0], dtype=torch.float64, device=encoder[0].device)
    v[row] = 1.0
    for a in reversed(encoder):  # eᵀ (I + Ā_L) … (I + Ā_1)
        v = v + v @ a.double()
    return v[tokens].float()


def relevance(analysis: ImageAnalysis, detection: Detection) -> tuple[str, torch.Tensor]:
    """``(level name, FloatTensor[h, w] ≥ 0)``: the relevance of ``detection`` over one level's cells (memoised per box).

    Raises:
        DetectorRuntimeError: the family has no attention relevance, or the model raised computing it.
    """
    detector = analysis.detector

    def compute() -> tuple[str, torch.Tensor]:
        try:
            maps = detector.family.attention_maps(detector, analysis.capture, detection)
            bars = attention_bars(maps)
            if maps.tokens is not None:
                cells = self_attention_rule(bars[0], maps.query, maps.tokens)
            else:
                cells = relevance_rules(*bars, maps.query)
            return maps.level, cells.detach().reshape(maps.shape)
        except DetectorRuntimeError:
            raise
        except Exception as exc:
            raise DetectorRuntimeError(
                f"detector {detector.name} raised {type(exc).__name__} computing the attention relevance of "
                f"{detection.describe()}: {exc}"
            ) from exc

    return analysis.remember(("attention", detection.index), compute)


def attention_cam(analysis: ImageAnalysis, detection: Detection) -> CamMap:
    """The ``attention`` map of ``detection`` on ``[H0, W0]`` original pixels (max 1; degenerate when all zero)."""
    level, cells = relevance(analysis, detection)
    grid_map = analysis.stack(OrderedDict([(level, cells[None].float())]))[0]
    degenerate = not bool(torch.isfinite(cells).all()) or float(cells.clamp_min(0).max()) == 0.0
    return CamMap(normalise(analysis.to_image(grid_map)), "attention", detection.index, degenerate)
