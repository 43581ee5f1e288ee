"""DETR (transformers' ``DetrForObjectDetection``): per-box gradients and attention relevance.

The target layer is ``model.model.input_projection`` (a 1×1 convolution of the backbone's stride-32
map): its output ``FloatTensor[1, d_model, h, w]``, flattened row-major, *is* the encoder's input
sequence. A detection is a decoder query: ``post_process_object_detection`` keeps the queries whose
best real class (softmax, the last column "no object" dropped) scores above the threshold, in query
order. What the family shares with RT-DETR (processing, capture, labels + 1) is
:mod:`.huggingface`.

**Per-box gradients** differentiate the class *logit* ``logits[0, query, label]`` (the probability
saturates) through a replay of the encoder, the decoder and the class head from a detached leaf of
the captured map, with the keyword arguments the model passed them (the mask at stride 32, the sine
position embeddings, the query position embeddings): the same numbers as the full forward's graph.
No box-local re-score exists: every query attends to every cell, so AblationCAM is not offered.

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

:func:`relevance_rules` computes that row without ``HW × HW`` products: ``R_ii`` enters only through
its row sums and one row vector times it, both chains of vector-matrix products (``O(L·HW²)``
instead of ``O(L·HW³)``; equal to the literal recursion to float32 precision). Rows that
sum to zero (padding cells, which nothing reads) stay zero where the reference divides by zero.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from ..datatypes import Detection
from ..errors import DetectorRuntimeError
from .family import Capture, DetectorView
from .hf_capture import Replay
from .huggingface import TransformerFamily, checked_queries


def detr_queries(logits: torch.Tensor, results: list[dict[str, torch.Tensor]], threshold: float) -> list[torch.Tensor]:
    """Per image, ``LongTensor[N]``: the query of each row of DETR's ``post_process_object_detection``.

    ``logits`` is ``FloatTensor[B, Q, K + 1]``; the rule is the processor's: softmax, drop the last
    ("no object") column, best class, keep ``score > threshold`` in query order.
    """
    scores, labels = torch.softmax(logits, -1)[..., :-1].max(-1)
    out = []
    for s, lab, result in zip(scores, labels, results, strict=True):
        q = torch.nonzero(s > threshold).flatten()
        out.append(checked_queries("DETR", "softmax without 'no object', score > threshold, query order", q, lab[q], s[q], result))
    return out


def attention_bars(replay: Replay, query: int, label: int) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Eq. 5 per layer, from one backward of ``logits[0, query, label]`` to every attention map.

    Returns ``(encoder Ā [HW, HW], decoder self Ā [Q, Q], cross Ā [Q, HW])`` per layer, each
    ``E_h[(∇A ⊙ A)⁺]`` (head mean of the positive part of gradient times attention).
    """
    groups = [replay.attentions[k] for k in ("encoder", "decoder", "cross")]
    flat = [a for g in groups for a in g]
    grads = torch.autograd.grad(replay.logits[0, query, label], flat, retain_graph=True)
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


class DetrFamily(TransformerFamily):
    """transformers' DETR (``DetrForObjectDetection``); see the module docstring."""

    name = "detr"
    classes = ("DetrForObjectDetection",)
    has_relevance = True
    recomputed = {"encoder": "inputs_embeds", "decoder": "encoder_hidden_states"}

    def default_processor(self, transformers: Any) -> Any:
        return transformers.DetrImageProcessor()

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        layer = getattr(getattr(model, "model", None), "input_projection", None)
        return layer if isinstance(layer, nn.Module) else None

    def capture_modules(self, model: Any) -> tuple[list[nn.Module], dict[str, nn.Module]]:
        return [model.model.input_projection], {"encoder": model.model.encoder, "decoder": model.model.decoder}

    def queries(self, logits: torch.Tensor, results: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        return detr_queries(logits, results, self.threshold)

    def replay(self, model: Any, capture: Capture, attentions: bool) -> Replay:
        """Encoder, decoder and class head on a leaf of the captured ``input_projection`` map."""
        calls = capture.memo["calls"]
        leaves = OrderedDict((k, v[None].detach().requires_grad_(True)) for k, v in capture.levels.items())
        (proj,) = leaves.values()
        with torch.enable_grad():
            enc = model.model.encoder(inputs_embeds=proj.flatten(2).transpose(1, 2), **calls["encoder"], output_attentions=attentions)
            dec = model.model.decoder(**calls["decoder"], encoder_hidden_states=enc.last_hidden_state, output_attentions=attentions)
            logits = model.class_labels_classifier(dec.last_hidden_state)
        maps = {"encoder": list(enc.attentions), "decoder": list(dec.attentions), "cross": list(dec.cross_attentions)} if attentions else {}
        return Replay(leaves, logits, maps)

    def attention_relevance(self, detector: DetectorView, capture: Capture, detection: Detection) -> tuple[str, torch.Tensor]:
        """Chefer et al.'s relevance of each ``input_projection`` cell for the detection's query and label."""
        implementation = getattr(getattr(detector.model, "config", None), "_attn_implementation", "eager")
        if implementation != "eager":
            raise DetectorRuntimeError(
                f"attention relevance reads DETR's attention maps, which {detector.name} does not return with "
                f"attn_implementation={implementation!r}; load the model with attn_implementation='eager' "
                "(AutoModelForObjectDetection.from_pretrained(path, attn_implementation='eager'))"
            )
        replay = self.replay_for(detector, capture, attentions=True)
        query = self.query_of(capture, detection)
        relevance = relevance_rules(*attention_bars(replay, query, detection.label - 1), query)
        name, level = next(iter(capture.levels.items()))
        return name, relevance.detach().reshape(level.shape[-2:])


FAMILY = DetrFamily()
