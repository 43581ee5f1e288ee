"""The two replay shapes every transformers DETR-style family is one of (shared; a family module picks one).

* :class:`EncoderDecoderFamily` — the levels are the *encoder's* input (DETR, Table Transformer,
  Conditional DETR, DAB-DETR: one stride-32 map; Deformable DETR: several levels, flattened and
  concatenated in order): a replay re-runs the encoder, the decoder and the class head.
* :class:`DecoderFamily` — the levels are the *decoder's* memory, after the encoder (RT-DETR and its
  successors RT-DETRv2, D-FINE, DEIMv2; RF-DETR, LW-DETR): a replay re-runs the decoder and the head.

Either way the replay receives, besides detached leaves ``FloatTensor[1, C, h, w]`` of the captured
levels, the keyword arguments the model passed its encoder / decoder (recorded by the capture,
detached): those are constants of the full forward's graph (the models detach their query
features, reference points and proposals themselves), so the replay's gradient *is* the full
forward's. A family declares only what differs: :meth:`final_logits` (whose class logits are the
model's) and, for the encoder-decoder shape, whether Chefer et al.'s attention relevance applies
(:attr:`TransformerFamily.has_relevance`: token-to-token cross-attention).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ...datatypes import Detection
from ...errors import DetectorRuntimeError
from ..family import AttentionMaps, Capture, DetectorView
from .family import SIGMOID_TOP_K, Replay, TransformerFamily

ALTERNATIVES = "eigengradcam, hirescam, layercam or drise"
"""The methods every transformers family supports besides EigenCAM (named by errors)."""


def leaves_of(capture: Capture) -> OrderedDict[str, torch.Tensor]:
    """Detached leaves ``FloatTensor[1, C, h, w]`` (``requires_grad``) of ``capture.levels``, in order."""
    return OrderedDict((k, v[None].detach().requires_grad_(True)) for k, v in capture.levels.items())


def tokens(leaves: OrderedDict[str, torch.Tensor]) -> torch.Tensor:
    """``FloatTensor[1, sum(h * w), C]``: every level flattened row-major, concatenated in order."""
    return torch.cat([leaf.flatten(2).transpose(1, 2) for leaf in leaves.values()], dim=1)


def padded_inputs(processor: Any, images: list[torch.Tensor], multiple: int) -> Any:
    """The processor's inputs, padded bottom/right (its own ``pad_size``, with a pixel mask) to multiples of
    ``multiple`` when its canvas is not: a windowed backbone's canvas constraint (RF-DETR, LW-DETR)."""
    inputs = processor(images=images, return_tensors="pt", input_data_format="channels_first")
    h, w = inputs["pixel_values"].shape[-2:]
    size = {"height": math.ceil(h / multiple) * multiple, "width": math.ceil(w / multiple) * multiple}
    if (size["height"], size["width"]) == (h, w):
        return inputs
    return processor(images=images, return_tensors="pt", input_data_format="channels_first", do_pad=True, pad_size=size)


def no_relevance(name: str, why: str) -> DetectorRuntimeError:
    """The error attention relevance raises on a family without token-to-token attention."""
    return DetectorRuntimeError(f"attention relevance is not available for the {name} family: {why}, so Chefer et al.'s "
                                f"rules do not apply; use {ALTERNATIVES}")


DEFORMABLE = ("its decoder reads the image through deformable attention (a few learned sampling points per query), "
              "not an attention matrix over image tokens")


@dataclass(frozen=True, eq=False)
class EncoderDecoderFamily(TransformerFamily):
    """Levels → ``model.model.encoder`` → ``model.model.decoder`` → :meth:`final_logits`."""

    recomputed = {"encoder": "inputs_embeds", "decoder": "encoder_hidden_states"}

    def final_logits(self, model: Any, decoder_output: Any) -> torch.Tensor:
        """``FloatTensor[1, Q, K]``: the model's class logits from its decoder's output (DETR's head)."""
        return model.class_labels_classifier(decoder_output.last_hidden_state)

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        try:
            modules = self.level_modules(model)
        except AttributeError:  # not a model of this family
            return None
        return modules[0] if len(modules) == 1 else nn.ModuleList(modules)

    def call_modules(self, model: Any) -> dict[str, nn.Module]:
        return {"encoder": model.model.encoder, "decoder": model.model.decoder}

    def replay(self, model: Any, capture: Capture, attentions: bool) -> Replay:
        """Encoder, decoder and class head on leaves of the captured levels."""
        calls = capture.memo["calls"]
        leaves = leaves_of(capture)
        flags: dict[str, Any] = {"output_attentions": True} if attentions else {}
        with torch.enable_grad():
            enc = model.model.encoder(inputs_embeds=tokens(leaves), **calls["encoder"], return_dict=True, **flags)
            dec = model.model.decoder(**calls["decoder"], encoder_hidden_states=enc.last_hidden_state, return_dict=True, **flags)
            logits = self.final_logits(model, dec)
        maps = {"encoder": list(enc.attentions), "decoder": list(dec.attentions), "cross": list(dec.cross_attentions)} if attentions else {}
        return Replay(leaves, logits, maps)

    def attention_maps(self, detector: DetectorView, capture: Capture, detection: Detection) -> AttentionMaps:
        """The replay's attention maps over the level's cells, and the detection's class logit."""
        if not self.has_relevance:
            raise no_relevance(self.name, "its encoder and decoder read the image through deformable attention (a few learned "
                                          "sampling points per query and level), not attention matrices over image tokens")
        implementation = getattr(getattr(detector.model, "config", None), "_attn_implementation", "eager")
        if implementation != "eager":
            raise DetectorRuntimeError(
                f"attention relevance reads {self.name}'s attention maps, which {detector.name} does not return with "
                f"attn_implementation={implementation!r}; load the model with attn_implementation='eager' "
                "(AutoModelForObjectDetection.from_pretrained(path, attn_implementation='eager'))"
            )
        replay = self.replay_for(detector, capture, attentions=True)
        query = self.query_of(capture, detection)
        name, level = next(iter(capture.levels.items()))
        maps = replay.attentions
        return AttentionMaps(name, (int(level.shape[-2]), int(level.shape[-1])), replay.logits[0, query, detection.label - 1],
                             maps["encoder"], maps["decoder"], maps["cross"], query)


@dataclass(frozen=True, eq=False)
class DecoderFamily(TransformerFamily):
    """Levels (``model.model.decoder_input_proj`` by default) → ``model.model.decoder`` → :meth:`final_logits`."""

    query_rule = SIGMOID_TOP_K
    recomputed = {"decoder": "encoder_hidden_states"}

    def final_logits(self, model: Any, decoder_output: Any) -> torch.Tensor:
        """``FloatTensor[1, Q, K]``: the logits of decoder layer :attr:`~TransformerFamily.decoder_layer` (RT-DETR's)."""
        return decoder_output.intermediate_logits[:, self.decoder_layer_index(model)]

    def target_layer(self, model: nn.Module) -> nn.Module | None:
        layer = getattr(getattr(model, "model", None), "decoder_input_proj", None)
        return layer if isinstance(layer, nn.Module) else None

    def level_modules(self, model: Any) -> list[nn.Module]:
        return list(model.model.decoder_input_proj)

    def call_modules(self, model: Any) -> dict[str, nn.Module]:
        return {"decoder": model.model.decoder}

    def replay(self, model: Any, capture: Capture, attentions: bool) -> Replay:
        """The decoder on leaves of the captured levels (its memory), then :meth:`final_logits`."""
        leaves = leaves_of(capture)
        with torch.enable_grad():
            dec = model.model.decoder(**capture.memo["calls"]["decoder"], encoder_hidden_states=tokens(leaves), return_dict=True)
            logits = self.final_logits(model, dec)
        return Replay(leaves, logits)

    def attention_maps(self, detector: DetectorView, capture: Capture, detection: Detection) -> AttentionMaps:
        raise no_relevance(self.name, DEFORMABLE)
