"""RT-DETR (transformers' ``RTDetrForObjectDetection``): per-box gradients; no attention relevance.

The target layer is ``model.model.decoder_input_proj``: one 1×1 convolution + batch norm per level
(strides 8, 16, 32 at the default three levels) on the hybrid encoder's outputs. Their outputs,
flattened and concatenated, are what the decoder's deformable cross-attention samples; the levels
are ``"0"``, ``"1"``, ``"2"`` in that order. The image processor stretches every image to one canvas
(640×640 by default, no padding) and only rescales by 1/255.

A detection is one ``(query, class)`` pair: ``post_process_object_detection`` takes the sigmoid of
every query's class logits and keeps the top ``num_queries`` over queries × classes above the
threshold, so one query may appear with several labels.

**Per-box gradients** differentiate the class *logit* through a replay of the decoder alone from
detached leaves of the captured levels, with the keyword arguments the model passed it. RT-DETR
itself detaches everything else the decoder receives (the selected query features, the initial
reference points, each layer's refined points), so this is the full forward's gradient exactly.
No box-local re-score exists (every query's attention reaches every level), so AblationCAM is not
offered.

**No attention relevance.** Chefer et al.'s rules propagate relevance through attention matrices
over image tokens; RT-DETR's decoder reads the image through *deformable* attention (a few learned
sampling points per query, head and level) and its encoder mixes the levels with convolutions,
so there is no token-to-token attention to roll out. An adaptation (splatting the sampling weights)
would be a new method, not the paper's; the gradient methods explain RT-DETR instead.
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


def rtdetr_queries(logits: torch.Tensor, results: list[dict[str, torch.Tensor]], threshold: float) -> list[torch.Tensor]:
    """Per image, ``LongTensor[N]``: the query of each row of RT-DETR's ``post_process_object_detection``.

    ``logits`` is ``FloatTensor[B, Q, K]``; the rule is the processor's (focal loss): sigmoid, top
    ``Q`` over the flattened ``Q × K`` scores, query = index // K, label = index % K, ``score > threshold``.
    """
    n_queries, n_classes = logits.shape[1:]
    scores, index = torch.topk(torch.sigmoid(logits).flatten(1), n_queries, dim=-1)
    out = []
    for s, idx, result in zip(scores, index, results, strict=True):
        keep = s > threshold
        rows = idx[keep]
        out.append(checked_queries("RT-DETR", "sigmoid, top-k over queries x classes, score > threshold",
                                   rows // n_classes, rows % n_classes, s[keep], result))
    return out


class RtDetrFamily(TransformerFamily):
    """transformers' RT-DETR (``RTDetrForObjectDetection``); see the module docstring."""

    name = "rt-detr"
    classes = ("RTDetrForObjectDetection",)
    recomputed = {"decoder": "encoder_hidden_states"}

    def default_processor(self, transformers: Any) -> Any:
        return transformers.RTDetrImageProcessor()

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        layer = getattr(getattr(model, "model", None), "decoder_input_proj", None)
        return layer if isinstance(layer, nn.Module) else None

    def capture_modules(self, model: Any) -> tuple[list[nn.Module], dict[str, nn.Module]]:
        return list(model.model.decoder_input_proj), {"decoder": model.model.decoder}

    def queries(self, logits: torch.Tensor, results: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        return rtdetr_queries(logits, results, self.threshold)

    def replay(self, model: Any, capture: Capture, attentions: bool) -> Replay:
        """The decoder on leaves of the captured levels; its last layer's logits are the model's."""
        leaves = OrderedDict((k, v[None].detach().requires_grad_(True)) for k, v in capture.levels.items())
        with torch.enable_grad():
            memory = torch.cat([leaf.flatten(2).transpose(1, 2) for leaf in leaves.values()], dim=1)
            dec = model.model.decoder(**capture.memo["calls"]["decoder"], encoder_hidden_states=memory)
        return Replay(leaves, dec.intermediate_logits[:, -1])

    def attention_relevance(self, detector: DetectorView, capture: Capture, detection: Detection) -> tuple[str, torch.Tensor]:
        raise DetectorRuntimeError(
            "attention relevance is not available for the rt-detr family: its decoder reads the image through deformable "
            "attention (a few learned sampling points per query), not an attention matrix over image tokens, so Chefer et "
            "al.'s rules do not apply; use eigengradcam, hirescam, layercam or drise"
        )


FAMILY = RtDetrFamily()
