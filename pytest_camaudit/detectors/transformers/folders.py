"""A transformers detector from a ``save_pretrained`` folder or a model object: what every transformers family loads with.

**Loading, offline.** ``--camaudit-model=DIR`` loads a ``save_pretrained`` folder whose
``config.json`` says a ``model_type`` a family declares (``detr``, ``rt_detr``…; the registry picks
the family and calls :func:`load`), with
``AutoModelForObjectDetection.from_pretrained(DIR, attn_implementation="eager", local_files_only=True)``
(eager: the attention relevance reads attention maps; the folder does not store the choice) and
the folder's image processor (without ``preprocessor_config.json``: the family's default). Nothing
reaches the network: the plugin names no Hub ids, and
:func:`~.runtime.import_transformers` keeps the Hub offline in the process. A model object (a
conftest, a ``package.module:callable``) goes through :meth:`Detector.wrap`, or :func:`hf_detector`
to pass its processor.

**Backbones.** Before loading, :func:`timm_backbone` reads ``config.json``: a folder whose backbone is a
timm model (the Hub checkpoints of the DETR-v1 family) needs timm, and one that names its backbone
only by a Hub id (or by a timm name with ``backbone_kwargs``, a form transformers 5 resolves through
the Hub) cannot be built offline: each gives a :class:`ModelLoadError` saying what to do.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from ...errors import ModelLoadError
from .. import registry
from ..base import Detector
from .family import DEFAULT_THRESHOLD, TransformerFamily
from .runtime import import_transformers

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def handled_types() -> dict[str, str]:
    """``config.json`` ``model_type`` → the class its family explains, from the registered declarations."""
    return {t: d.handles.classes[0] if d.handles.classes else d.handles.name for d in registry.declarations() for t in d.handles.model_types}


def hf_detector(model: nn.Module, processor: Any = None, threshold: float = DEFAULT_THRESHOLD, name: str | None = None,
                class_names: Sequence[str] | None = None, meta: dict[str, Any] | None = None) -> Detector:
    """Wrap a transformers DETR-style detector with its image processor (default: the family's).

    A conftest or ``package.module:callable`` returns it to use a fine-tuned model's own processor.

    Raises:
        ModelLoadError: ``model`` is not a detector of a transformers family this package explains.
    """
    family = registry.family_for(model)
    if not isinstance(family, TransformerFamily):
        raise ModelLoadError(f"{type(model).__name__} is not a transformers detector this plugin explains "
                             f"(handled: {', '.join(dict.fromkeys(handled_types().values()))})")
    return Detector.wrap(model, class_names, name=name, meta=meta, family=family.configured(processor, threshold))


def load(spec: str, weights: str | None, offline: bool) -> Detector:
    """``--camaudit-model=DIR``: the loader every transformers family declares (the registry checked ``config.json``'s ``model_type``)."""
    folder = Path(spec).expanduser()
    if weights is not None:
        raise ModelLoadError(f"--camaudit-weights does not apply to --camaudit-model={spec} (a Hugging Face folder carries its own "
                             "weights); drop --camaudit-weights")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        raise ModelLoadError(f"{folder} has a config.json but no weights: expected {folder / WEIGHT_FILES[0]} (or "
                             f"{', '.join(WEIGHT_FILES[1:])}) as written by save_pretrained")
    _check_backbone(folder)
    transformers = import_transformers()
    try:
        model = transformers.AutoModelForObjectDetection.from_pretrained(folder, attn_implementation="eager", local_files_only=True)
    except Exception as exc:
        kind = _model_type(folder)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise ModelLoadError(f"cannot load the {kind} detector in {folder} ({type(exc).__name__}: {first}); "
                             "check its weights file and config.json") from exc
    processor, source = None, "the family's default (no preprocessor_config.json)"
    if (folder / "preprocessor_config.json").is_file():
        try:
            processor = transformers.AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        except Exception as exc:
            raise ModelLoadError(f"{folder / 'preprocessor_config.json'} cannot be read as an image processor "
                                 f"({type(exc).__name__}: {exc})") from exc
        source = str(folder / "preprocessor_config.json")
    return hf_detector(model, processor, name=folder.name or str(folder), meta={"folder": str(folder), "processor": source})


def timm_backbone(config: dict[str, Any]) -> str | None:
    """The timm backbone a ``config.json`` asks for, or ``None`` (transformers' backbone conventions).

    A config needs timm when its ``backbone_config`` is a ``timm_backbone``, or when it has none, names a
    ``backbone`` and ``use_timm_backbone`` is not false (a missing key reads as true: configs written by
    transformers 4.2x, e.g. the Hub's DETR, Table Transformer, Conditional / DAB / Deformable DETR).
    """
    sub = config.get("backbone_config")
    if isinstance(sub, dict) and sub.get("model_type") == "timm_backbone":
        return str(sub.get("backbone") or "a timm model")
    if sub is None and config.get("backbone") and config.get("use_timm_backbone", True) is not False:
        return str(config["backbone"])
    return None


def _check_backbone(folder: Path) -> None:
    """A clear error for a folder whose backbone cannot be built offline here (timm missing, a Hub id)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # transformers says what is wrong with the file
    if not isinstance(config, dict):
        return
    name = timm_backbone(config)
    if name is not None:
        if importlib.util.find_spec("timm") is None:
            raise ModelLoadError(f"{folder} uses a timm backbone (config.json: backbone {name!r}, use_timm_backbone "
                                 f"{config.get('use_timm_backbone', 'absent')}); install timm (pip install timm) or use a "
                                 "copy saved with a transformers backbone_config (a model built with use_timm_backbone=False)")
        if config.get("backbone_kwargs"):
            raise ModelLoadError(f"{folder}'s config.json names its timm backbone {name!r} with backbone_kwargs and no "
                                 "backbone_config, a form transformers 5 cannot read offline (it asks the Hub whether "
                                 f"{name!r} is a repository); load it once and re-save it with save_pretrained")
    elif config.get("backbone_config") is None and config.get("backbone") and config.get("use_timm_backbone") is False:
        raise ModelLoadError(f"{folder}'s config.json names its backbone by Hub id ({config['backbone']!r}) without a "
                             "backbone_config: its configuration would have to come from the Hub; load it once online "
                             "and re-save it with save_pretrained")


def _model_type(folder: Path) -> str:
    try:
        return str(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type"))
    except (OSError, ValueError, AttributeError):
        return "?"
