"""Reading a state-dict file (``--camaudit-weights``) without running code from it."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelLoadError


def load_state_dict_file(path: Path) -> tuple[dict[str, torch.Tensor], list[str] | None]:
    """``(name → tensor, class names or None)`` from ``path``, loaded with ``weights_only=True``.

    A dict holding the state dict under ``state_dict`` or ``model`` (with ``classes`` /
    ``class_names`` beside it) is unwrapped.

    Raises:
        ModelLoadError: the file is missing, corrupt, or holds no state dict; the message says what to do.
    """
    if not path.is_file():
        raise ModelLoadError(f"weights file {path} does not exist; check --camaudit-weights")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"weights file {path} is corrupt or not a PyTorch state dict ({type(exc).__name__}: {exc}); "
            "re-export it with torch.save(model.state_dict(), path)"
        ) from exc
    classes = None
    if isinstance(payload, dict):
        for key in ("state_dict", "model"):
            if isinstance(payload.get(key), dict):
                classes = payload.get("classes") or payload.get("class_names")
                payload = payload[key]
                break
    if not isinstance(payload, dict) or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ModelLoadError(f"weights file {path} does not hold a state dict (name → tensor)")
    return payload, ([str(c) for c in classes] if classes else None)
