"""The grammar of ``--camaudit-model``: which values name a detector, checked without importing torch.

What the families accept comes from their declarations (:mod:`.registry`); a value is one of
(first match wins):

* ``name`` — a name a family declares: the embedded detectors (``shapes``…, declared by
  :mod:`pytest_camaudit.zoo.source`), torchvision's detection builders (``fasterrcnn_resnet50_fpn``…,
  declared by the torchvision families);
* ``callable`` — ``package.module:callable`` returning a model, a ``(model, class_names)`` pair or a
  :class:`~pytest_camaudit.detectors.base.Detector`;
* ``config`` — a file with a suffix a family declares other than a checkpoint's, e.g.
  ``yolo11n.yaml`` (the ultralytics family builds it with random weights);
* ``checkpoint`` — a weights file (``.pt``, ``.pth``, ``.safetensors``): a zoo checkpoint or a
  framework's own (ultralytics), told apart by content;
* ``directory`` — an existing folder, e.g. a Hugging Face ``save_pretrained`` directory (its
  ``config.json``'s ``model_type`` names the family).

Which family loads a ``config``, ``checkpoint`` or ``directory`` is decided when it is loaded
(:mod:`pytest_camaudit.detectors.loading`), from the file's content.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from . import registry

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
"""Weights files: always accepted here; the families that declare the suffix look inside when it is loaded."""
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_TORCHVISION = "pytest_camaudit.detectors.torchvision."


def declared_suffixes() -> tuple[str, ...]:
    """File suffixes some family declares, besides :data:`CHECKPOINT_SUFFIXES`."""
    found = [s for d in registry.declarations() for s in d.handles.suffixes if s not in CHECKPOINT_SUFFIXES]
    return tuple(dict.fromkeys(found))


def accepted() -> str:
    """What ``--camaudit-model`` accepts, in words, from the declarations (for error messages)."""
    decls = registry.declarations()
    named = [d.handles.phrase() for d in decls if d.handles.names and d.handles.describe]
    files = [d.handles.phrase() for d in decls if not d.handles.names and d.handles.suffixes and d.handles.describe]
    phrases = [*named, "'package.module:callable' returning a model", *files,
               f"a checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)})"]
    if any(d.handles.model_types for d in decls):
        phrases.append("a Hugging Face save_pretrained directory")
    phrases = list(dict.fromkeys(phrases))
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def spec_kind(value: str) -> str:
    """The kind of model spec ``value`` is (see the module docstring).

    Raises:
        ValueError: ``value`` names no detector; the message lists what is accepted.
    """
    v = value.strip()
    if v and registry.by_name(v) is not None:
        return "name"
    if _CALLABLE.match(v):
        return "callable"
    lower = v.lower()
    if lower.endswith(declared_suffixes()):
        return "config"
    if lower.endswith(CHECKPOINT_SUFFIXES):
        return "checkpoint"
    if v and Path(v).expanduser().is_dir():
        return "directory"
    if "/" in v or "\\" in v:
        raise ValueError(f"model path {value!r} is not an existing folder or a known file type; expected {accepted()}")
    raise ValueError(f"unknown model {value!r}; expected {accepted()}")


def __getattr__(name: str) -> Any:
    """``TORCHVISION_BUILDERS`` and ``ACCEPTED``, derived from the declarations when first read."""
    if name == "TORCHVISION_BUILDERS":
        return tuple(n for d in registry.declarations() if d.module.startswith(_TORCHVISION) for n in d.handles.names)
    if name == "ACCEPTED":
        return accepted()
    if name == "CONFIG_SUFFIXES":
        return declared_suffixes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
