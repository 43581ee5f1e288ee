"""The transformers runtime: the one offline import of ``transformers``, and what every family reads of a model.

transformers is an optional extra (``pip install 'pytest-camaudit[hf]'``), imported inside
functions only, always through :func:`import_transformers`: nothing reaches the network, the
plugin names no Hub ids, and the environment is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...errors import ModelLoadError

INSTALL_HINT = "install the extra: pip install 'pytest-camaudit[hf]' (transformers>=5,<6 and safetensors)"
_HUB_SETTINGS = ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS")


def import_transformers() -> Any:
    """``transformers``, with the Hub offline and quiet in this process, the environment left as it was.

    ``huggingface_hub`` reads ``HF_HUB_OFFLINE`` and ``HF_HUB_DISABLE_PROGRESS_BARS`` once, when it is
    first imported: both are set to ``1`` (unless the user set them) for that import only, then put
    back, so no other library (nor ``--camaudit-offline``'s reading of ``HF_HUB_OFFLINE``) sees a
    change. Where a conftest imported transformers first, its settings stand; loading a folder passes
    ``local_files_only=True`` either way.

    Raises:
        ModelLoadError: transformers is not installed; the message says how to install it.
    """
    saved = {k: os.environ.get(k) for k in _HUB_SETTINGS}
    for k in _HUB_SETTINGS:
        os.environ.setdefault(k, "1")
    try:
        import huggingface_hub.constants  # noqa: F401  (reads the settings above)
        import transformers
    except ImportError as exc:
        raise ModelLoadError(f"Hugging Face detectors need transformers, which cannot be imported ({exc}); {INSTALL_HINT}") from exc
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return transformers


def is_transformers_model(model: nn.Module, classes: Sequence[str]) -> bool:
    """Whether ``model`` is a transformers model of one of ``classes`` (by class name, no import)."""
    return type(model).__module__.startswith("transformers") and any(c.__name__ in classes for c in type(model).__mro__)


def label_names(config: Any) -> list[str]:
    """``config.id2label`` as a list, index = the model's label (keys may be ints or strings)."""
    id2label = {int(k): str(v) for k, v in dict(getattr(config, "id2label", None) or {}).items()}
    n = int(getattr(config, "num_labels", len(id2label)) or len(id2label))
    return [id2label.get(i, f"class_{i}") for i in range(n)]


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """``FloatTensor[3, H, W]`` in ``[0, 1]`` → ``uint8 [3, H, W]`` on the CPU (what an image file holds)."""
    return image.detach().float().mul(255.0).round_().clamp_(0, 255).to(device="cpu", dtype=torch.uint8)
