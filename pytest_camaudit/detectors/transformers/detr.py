"""DETR (transformers' ``DetrForObjectDetection``): per-box gradients and attention relevance.

The target layer is ``model.model.input_projection`` (a 1×1 convolution of the backbone's stride-32
map): its output ``FloatTensor[1, d_model, h, w]``, flattened row-major, *is* the encoder's input
sequence. A detection is a decoder query: ``post_process_object_detection`` keeps the queries whose
best real class (softmax, the last column "no object" dropped) scores above the threshold, in query
order (:data:`~.family.SOFTMAX_WITHOUT_NO_OBJECT`). What the family shares with RT-DETR
(processing, capture, labels + 1, the replay) is :mod:`.family`.

**Per-box gradients** differentiate the class *logit* ``logits[0, query, label]`` (the probability
saturates) through a replay of the encoder, the decoder and the class head from a detached leaf of
the captured map, with the keyword arguments the model passed them (the mask at stride 32, the sine
position embeddings, the query position embeddings): the same numbers as the full forward's graph.
No box-local re-score exists: every query attends to every cell, so AblationCAM is not offered.

**Attention relevance** (Chefer, Gur & Wolf, ICCV 2021; the maths is
:mod:`pytest_camaudit.methods.attention`'s): the family hands it the replay's attention maps —
the encoder's self-attention over the ``input_projection`` cells, the decoder's self-attention and
its cross-attention from queries to those cells — and the detection's class logit
(:meth:`DetrFamily.attention_maps`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...datatypes import Detection
from ...errors import DetectorRuntimeError
from ..family import AttentionMaps, Capture, DetectorView
from ..handles import Handles
from .family import SOFTMAX_WITHOUT_NO_OBJECT, Replay, TransformerFamily, checked_queries

HANDLES = Handles(
    name="detr",
    classes=("DetrForObjectDetection",),
    class_modules=("transformers.",),
    model_types=("detr",),
    loader="pytest_camaudit.detectors.transformers.folders:load",
)


def detr_queries(logits: torch.Tensor, results: list[dict[str, torch.Tensor]], threshold: float) -> list[torch.Tensor]:
    """Per image, ``LongTensor[N]``: the query of each row of DETR's ``post_process_object_detection``
    (``logits`` ``FloatTensor[B, Q, K + 1]``; the rule: :data:`~.family.SOFTMAX_WITHOUT_NO_OBJECT`)."""
    rule = SOFTMAX_WITHOUT_NO_OBJECT
    return [checked_queries("detr", rule.description, *rule.rows(lg, threshold), result) for lg, result in zip(logits, results, strict=True)]


@dataclass(frozen=True, eq=False)
class DetrFamily(TransformerFamily):
    """transformers' DETR (``DetrForObjectDetection``); see the module docstring."""

    name = "detr"
    handles = HANDLES
    query_rule = SOFTMAX_WITHOUT_NO_OBJECT
    has_relevance = True
    recomputed = {"encoder": "inputs_embeds", "decoder": "encoder_hidden_states"}

    def default_processor(self, transformers: Any) -> Any:
        return transformers.DetrImageProcessor()

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        layer = getattr(getattr(model, "model", None), "input_projection", None)
        return layer if isinstance(layer, nn.Module) else None

    def level_modules(self, model: Any) -> list[nn.Module]:
        return [model.model.input_projection]

    def call_modules(self, model: Any) -> dict[str, nn.Module]:
        return {"encoder": model.model.encoder, "decoder": model.model.decoder}

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

    def attention_maps(self, detector: DetectorView, capture: Capture, detection: Detection) -> AttentionMaps:
        """The replay's attention maps over the ``input_projection`` cells, and the detection's class logit."""
        implementation = getattr(getattr(detector.model, "config", None), "_attn_implementation", "eager")
        if implementation != "eager":
            raise DetectorRuntimeError(
                f"attention relevance reads DETR's attention maps, which {detector.name} does not return with "
                f"attn_implementation={implementation!r}; load the model with attn_implementation='eager' "
                "(AutoModelForObjectDetection.from_pretrained(path, attn_implementation='eager'))"
            )
        replay = self.replay_for(detector, capture, attentions=True)
        query = self.query_of(capture, detection)
        name, level = next(iter(capture.levels.items()))
        maps = replay.attentions
        return AttentionMaps(name, (int(level.shape[-2]), int(level.shape[-1])), replay.logits[0, query, detection.label - 1],
                             maps["encoder"], maps["decoder"], maps["cross"], query)


FAMILY = DetrFamily()
