"""Tiny random models of the transformers detection types beyond DETR and RT-DETR (``support.hf`` dispatches here).

Each :class:`TinyType` builds, offline and without timm, a model of a few hundred thousand
parameters (eager attention, the labels of :data:`support.hf.LABELS`), its small image processor,
and its bright-spot twin (constant weights: each feature cell is the brightness of its receptive
field). Keyed by the family's name (``Family.name``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from support.hf import _labels, constant_weights, hf, make_selective
from support.hf_norm_twins import lw_detr_twin, rf_detr_twin


@dataclass(frozen=True)
class TinyType:
    """A tiny model of one type: ``make(**config overrides) → model``, its processor, its spot twin's overrides."""

    make: Callable[..., torch.nn.Module]
    processor: Callable[[], Any]
    spot: dict[str, Any]
    twin: Callable[[torch.nn.Module], torch.nn.Module] = constant_weights
    spot_processor: Callable[[], Any] | None = None
    """The spot twin's processor; ``None``: :attr:`processor`."""

    def build(self) -> torch.nn.Module:
        return self.make().eval()

    def spot_twin(self) -> torch.nn.Module:
        return self.twin(self.make(**self.spot).eval())


RT_COMMON = {"encoder_hidden_dim": 64, "d_model": 64, "hidden_expansion": 0.5, "decoder_layers": 2, "decoder_in_channels": [64, 64, 64],
                 "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "num_queries": 30, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
                 "attn_implementation": "eager"}


def _rt_resnet() -> Any:
    return hf.RTDetrResNetConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], embedding_size=16, layer_type="basic",
                                 out_indices=[2, 3, 4])


def _rt_processor() -> Any:
    return hf.RTDetrImageProcessor(size={"height": 320, "width": 320})


def _rt_detr_v2(**overrides: Any) -> torch.nn.Module:
    kw = dict(backbone_config=_rt_resnet(), encoder_in_channels=[32, 64, 128], **RT_COMMON, **_labels())
    return hf.RTDetrV2ForObjectDetection(hf.RTDetrV2Config(**{**kw, **overrides}))


def _hgnet() -> Any:
    return hf.HGNetV2Config(embedding_size=16, depths=[1, 1, 1, 1], hidden_sizes=[32, 64, 128, 256], stem_channels=[3, 8, 16],
                            stage_in_channels=[16, 32, 64, 128], stage_mid_channels=[8, 16, 32, 64], stage_out_channels=[32, 64, 128, 256],
                            stage_num_blocks=[1, 1, 1, 1], stage_numb_of_layers=[2, 2, 2, 2], out_features=["stage2", "stage3", "stage4"])


def _d_fine(**overrides: Any) -> torch.nn.Module:
    kw = dict(backbone_config=_hgnet(), encoder_in_channels=[64, 128, 256], **{**RT_COMMON, "decoder_layers": 3}, **_labels())
    return hf.DFineForObjectDetection(hf.DFineConfig(**{**kw, **overrides}))


def _deimv2(**overrides: Any) -> torch.nn.Module:
    kw = dict(backbone_config=_hgnet(), encoder_in_channels=[64, 128, 256], **{**RT_COMMON, "decoder_layers": 3}, **_labels())
    return hf.Deimv2ForObjectDetection(hf.Deimv2Config(**{**kw, **overrides}))


DETR_COMMON = {"use_timm_backbone": False, "attn_implementation": "eager", "d_model": 64, "encoder_layers": 2, "decoder_layers": 2,
               "encoder_attention_heads": 4, "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
               "num_queries": 20}


def _resnet(*stages: str) -> Any:
    return hf.ResNetConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], embedding_size=16, layer_type="basic",
                           out_features=list(stages) or ["stage4"])


def _detr_processor(cls: str) -> Callable[[], Any]:
    return lambda: getattr(hf, cls)(size={"shortest_edge": 320, "longest_edge": 512})


def _deformable_detr(**overrides: Any) -> torch.nn.Module:
    kw = dict(backbone_config=_resnet("stage2", "stage3", "stage4"), **DETR_COMMON, encoder_n_points=2, decoder_n_points=2, **_labels())
    return hf.DeformableDetrForObjectDetection(hf.DeformableDetrConfig(**{**kw, **overrides}))


def _spread(model: torch.nn.Module, attr: str = "query_position_embeddings") -> torch.nn.Module:
    """Random DETR-like queries are all alike (zero inputs, near-uniform cross-attention): spread them."""
    with torch.no_grad():
        getattr(model.model, attr).weight.normal_(0.0, 1.0)
    return model


def _conditional_detr(**overrides: Any) -> torch.nn.Module:
    kw = dict(backbone_config=_resnet(), **DETR_COMMON, **_labels())
    return _spread(hf.ConditionalDetrForObjectDetection(hf.ConditionalDetrConfig(**{**kw, **overrides})))


def _dab_detr(**overrides: Any) -> torch.nn.Module:
    common = {k: v for k, v in DETR_COMMON.items() if k != "d_model"}
    kw = dict(backbone_config=_resnet(), **common, hidden_size=64, **_labels())
    return _spread(hf.DabDetrForObjectDetection(hf.DabDetrConfig(**{**kw, **overrides})), "query_refpoint_embeddings")


def _rf_detr(num_windows: int = 2, **overrides: Any) -> torch.nn.Module:
    backbone = hf.RfDetrDinov2Config(hidden_size=48, num_hidden_layers=4, num_attention_heads=3, image_size=224, patch_size=14,
                                     num_windows=num_windows, out_features=["stage1", "stage2", "stage3", "stage4"])
    kw = dict(backbone_config=backbone, d_model=64, decoder_layers=2, decoder_self_attention_heads=4, decoder_cross_attention_heads=4,
              decoder_ffn_dim=128, num_queries=30, group_detr=3, c2f_num_blocks=1, attn_implementation="eager", **_labels())
    return hf.RfDetrForObjectDetection(hf.RfDetrConfig(**{**kw, **overrides}))


def _table_transformer(**overrides: Any) -> torch.nn.Module:
    kw = dict(backbone_config=_resnet(), **DETR_COMMON, **_labels())
    return make_selective(hf.TableTransformerForObjectDetection(hf.TableTransformerConfig(**{**kw, **overrides})))


def _lw_detr(**overrides: Any) -> torch.nn.Module:
    backbone = hf.LwDetrViTConfig(hidden_size=48, num_hidden_layers=4, num_attention_heads=3, image_size=256, pretrain_image_size=224,
                                  patch_size=16, window_block_indices=[0, 2], out_indices=[1, 3], num_windows=4)
    kw = dict(backbone_config=backbone, projector_scale_factors=[2.0, 0.5], d_model=64, decoder_layers=2, decoder_self_attention_heads=4,
              decoder_cross_attention_heads=4, decoder_ffn_dim=128, num_queries=30, group_detr=3, attn_implementation="eager", **_labels())
    return hf.LwDetrForObjectDetection(hf.LwDetrConfig(**{**kw, **overrides}))


def _yolos(**overrides: Any) -> torch.nn.Module:
    kw = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=128, image_size=[320, 320], patch_size=16,
              num_detection_tokens=10, use_mid_position_embeddings=True, attn_implementation="eager", **_labels())
    model = hf.YolosForObjectDetection(hf.YolosConfig(**{**kw, **overrides}))
    with torch.no_grad():  # random detection tokens are all zeros: spread them so queries differ
        model.vit.embeddings.detection_tokens.normal_(0.0, 1.0)
    return model


def _identity_vit(model: torch.nn.Module) -> torch.nn.Module:
    """YOLOS whose patch tokens are the averaged brightness of their patch up to the target layer: an averaging
    patch convolution (its bias maps black, ImageNet-normalised, to 0: there is no ReLU to do it), no position
    embeddings, attention and MLP outputs zeroed (each layer is the identity)."""
    constant_weights(model)
    black = sum(m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=True)) / 3
    with torch.no_grad():
        model.vit.embeddings.patch_embeddings.projection.bias.fill_(black)
        model.vit.embeddings.position_embeddings.zero_()
        mid = getattr(getattr(model.vit.encoder, "interpolation", None), "mid_position_embeddings", None)
        if mid is not None:
            mid.zero_()
        for layer in model.vit.encoder.layer:
            for linear in (layer.attention.output.dense, layer.output.dense):
                linear.weight.zero_()
                linear.bias.zero_()
    return model


def _unit_scale(model: torch.nn.Module) -> torch.nn.Module:
    """He-initialised convolutions: transformers' initialisation leaves a tiny HGNetV2 model with maps of magnitude
    ~1e-22, whose gradients (~1e22) overflow GradCAM++'s cubes in float32."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight)
    return model


def _pp_doclayout_v3(**overrides: Any) -> torch.nn.Module:
    backbone = _hgnet()
    backbone.out_features = ["stage1", "stage2", "stage3", "stage4"]
    kw = dict(backbone_config=backbone, encoder_in_channels=[64, 128, 256], x4_feat_dim=32, mask_feature_channels=[32, 32],
              num_prototypes=8, **RT_COMMON, **_labels())
    return _unit_scale(hf.PPDocLayoutV3ForObjectDetection(hf.PPDocLayoutV3Config(**{**kw, **overrides})))


def _pp_doclayout_v4(**overrides: Any) -> torch.nn.Module:
    kw = dict(backbone_config=_hgnet(), encoder_in_channels=[64, 128, 256], hidden_size=64, **RT_COMMON, **_labels())
    return _unit_scale(hf.PPDocLayoutV4ForObjectDetection(hf.PPDocLayoutV4Config(**{**kw, **overrides})))


def _pp_doclayout_v2(**overrides: Any) -> torch.nn.Module:
    from transformers.models.pp_doclayout_v2.configuration_pp_doclayout_v2 import PPDocLayoutV2ReadingOrderConfig

    order = PPDocLayoutV2ReadingOrderConfig(hidden_size=64, num_attention_heads=4, intermediate_size=128, num_hidden_layers=1,
                                            coordinate_size=16, shape_size=0)
    kw = dict(backbone_config=_hgnet(), encoder_in_channels=[64, 128, 256], reading_order_config=order,
              class_thresholds=[0.5] * 5, class_order=list(range(5)), **RT_COMMON, **_labels())
    return _unit_scale(hf.PPDocLayoutV2ForObjectDetection(hf.PPDocLayoutV2Config(**{**kw, **overrides})))


TYPES: dict[str, TinyType] = {
    "rt-detr-v2": TinyType(_rt_detr_v2, _rt_processor, {"encoder_layers": 0}),
    "d-fine": TinyType(_d_fine, _rt_processor, {"encoder_layers": 0}),
    "deimv2": TinyType(_deimv2, _rt_processor, {"encoder_layers": 0}),
    "conditional-detr": TinyType(_conditional_detr, _detr_processor("ConditionalDetrImageProcessor"),
                                 {"encoder_layers": 1, "decoder_layers": 1}),
    "dab-detr": TinyType(_dab_detr, _detr_processor("ConditionalDetrImageProcessor"), {"encoder_layers": 1, "decoder_layers": 1}),
    # aspect-preserving, so that the canvas breaks the 28-px window grid and the family pads it
    "rf-detr": TinyType(_rf_detr, lambda: hf.RfDetrImageProcessor(size={"shortest_edge": 224, "longest_edge": 400}), {"num_windows": 1},
                        rf_detr_twin, lambda: hf.RfDetrImageProcessor(size={"shortest_edge": 224, "longest_edge": 400}, do_normalize=False)),
    "table-transformer": TinyType(_table_transformer, _detr_processor("DetrImageProcessor"), {"encoder_layers": 1, "decoder_layers": 1}),
    "lw-detr": TinyType(_lw_detr, _detr_processor("DeformableDetrImageProcessor"), {}, lw_detr_twin,
                        lambda: hf.DeformableDetrImageProcessor(size={"shortest_edge": 320, "longest_edge": 512}, do_normalize=False)),
    "yolos": TinyType(_yolos, _detr_processor("YolosImageProcessor"), {}, _identity_vit),
    "pp-doclayout-v3": TinyType(_pp_doclayout_v3, lambda: hf.PPDocLayoutV3ImageProcessor(size={"height": 320, "width": 320}),
                                {"encoder_layers": 0}),
    "pp-doclayout-v4": TinyType(_pp_doclayout_v4, lambda: hf.PPDocLayoutV4ImageProcessor(size={"height": 320, "width": 320}),
                                {"encoder_layers": 0}),
    "pp-doclayout-v2": TinyType(_pp_doclayout_v2, lambda: hf.PPDocLayoutV2ImageProcessor(size={"height": 320, "width": 320}),
                                {"encoder_layers": 0}),
    "deformable-detr": TinyType(_deformable_detr, _detr_processor("DeformableDetrImageProcessor"), {"encoder_layers": 1}),
}
