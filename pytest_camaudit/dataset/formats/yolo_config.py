"""An ultralytics dataset YAML: its keys, its class names, and where a split's images are.

The rules are ultralytics' own (``ultralytics.data.utils.check_det_dataset``, reproduced here so
that reading a YAML needs no ultralytics, an optional extra):

* read with ``yaml.safe_load``; ``path``, ``train`` / ``val`` / ``test``, ``names`` (a list, or a
  dict of index → name; or only ``nc``: ``class_0``…) with ultralytics' types; ``validation``
  stands for a missing ``val``;
* the dataset root is ``path``, or the YAML's folder when ``path`` is absent; a relative ``path``
  is relative to the *current folder*, and when nothing is there, below ultralytics'
  ``datasets_dir`` (its ``settings.json``; ``./datasets`` when there is none);
* a split is a folder (every image below it), a ``.txt`` file listing images (a line starting with
  ``./`` is relative to the list's folder, any other relative line to the current folder), or a
  list of those, each relative to the root (``../x`` that does not exist there is tried as ``x``);
* a ``download:`` entry is never run; pose datasets (``kpt_shape``) are refused.

Anything wrong here makes the whole dataset unusable: :class:`~pytest_camaudit.errors.DatasetError`
with what to fix (the plugin turns it into a usage error).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import DatasetError
from .base import IMAGE_SUFFIXES

KEY_TYPES: dict[str, tuple[type, ...]] = {"path": (str,), "train": (str, list), "val": (str, list), "test": (str, list),
                                          "names": (list, dict), "kpt_shape": (list,), "flip_idx": (list,)}
"""Keys whose type is checked, and the types allowed (ultralytics' ``DATASET_KEY_TYPES``)."""


@dataclass(frozen=True)
class YoloConfig:
    """A dataset YAML resolved for one split.

    Attributes:
        yaml: the YAML file.
        root: the dataset root (``path`` resolved).
        names: class names by index.
        split: the split's key.
        sources: the split's folders and list files, resolved; each exists.
    """

    yaml: Path
    root: Path
    names: tuple[str, ...]
    split: str
    sources: tuple[Path, ...]


def _document(yaml_path: Path) -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"dataset YAML {yaml_path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DatasetError(f"{yaml_path} is not a YAML file pytest-camaudit can read: {exc}") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{yaml_path}: expected a mapping with path, train/val/test and names, got {type(doc).__name__}")
    for key, types in KEY_TYPES.items():
        if doc.get(key) is not None and not isinstance(doc[key], types):
            want = " or ".join(t.__name__ for t in types)
            raise DatasetError(f"{yaml_path}: '{key}' must be a {want}, not {type(doc[key]).__name__}; fix that key")
    if doc.get("kpt_shape") is not None:
        raise DatasetError(f"{yaml_path} is a pose (keypoint) dataset (kpt_shape: {doc['kpt_shape']}); pytest-camaudit checks "
                           "detected boxes, not keypoints: point --camaudit-cases at a detection or segmentation dataset YAML")
    if "val" not in doc and "validation" in doc:
        doc["val"] = doc.pop("validation")
    return doc


def _names(doc: dict[str, Any], yaml_path: Path) -> tuple[str, ...]:
    """Class names by index, as ultralytics reads ``names`` / ``nc``."""
    names, nc = doc.get("names"), doc.get("nc")
    n_declared = int(float(nc)) if nc is not None and not isinstance(nc, bool) and _whole(nc) else None
    if names is None and nc is None:
        raise DatasetError(f"{yaml_path}: no 'names' (nor 'nc'); add the class names, e.g. names: [person, car] or names: {{0: person, 1: car}}")
    if nc is not None and (n_declared is None or not isinstance(nc, (int, float, str))):
        raise DatasetError(f"{yaml_path}: 'nc: {nc}' must be a whole number of classes")
    if names is None:
        return tuple(f"class_{i}" for i in range(n_declared or 0))
    if isinstance(names, list):
        names = dict(enumerate(names))
    try:
        by_index = {int(k): str(v) for k, v in names.items()}
    except (TypeError, ValueError):
        raise DatasetError(f"{yaml_path}: the keys of 'names' must be class indices 0, 1, 2…, got {sorted(map(str, names))}") from None
    n = len(by_index)
    if not n or sorted(by_index) != list(range(n)):
        raise DatasetError(f"{yaml_path}: 'names' must number its {n} classes 0..{n - 1}, got indices {sorted(by_index)}")
    if n_declared is not None and n_declared != n:
        raise DatasetError(f"{yaml_path}: 'names' has {n} classes but 'nc: {nc}'; make them agree")
    return tuple(by_index[i] for i in range(n))


def _whole(v: Any) -> bool:
    if v is None:
        return False
    try:
        return float(v) == int(float(v))
    except (TypeError, ValueError, OverflowError):
        return False


def datasets_dir() -> Path:
    """ultralytics' ``datasets_dir``: from its ``settings.json`` in its config folder, else ``./datasets``."""
    if env := os.getenv("YOLO_CONFIG_DIR"):
        folder = Path(env).expanduser() / "Ultralytics"
    elif sys.platform == "darwin":
        folder = Path.home() / "Library" / "Application Support" / "Ultralytics"
    elif sys.platform == "win32":
        folder = Path.home() / "AppData" / "Roaming" / "Ultralytics"
    else:
        folder = Path(os.getenv("XDG_CONFIG_HOME", Path.home() / ".config")) / "Ultralytics"
    try:
        value = json.loads((folder / "settings.json").read_text(encoding="utf-8")).get("datasets_dir")
    except (OSError, ValueError, AttributeError):
        value = None
    return Path(value) if isinstance(value, str) and value else Path.cwd() / "datasets"


def _root(doc: dict[str, Any], yaml_path: Path) -> Path:
    root = Path(doc["path"]).expanduser() if doc.get("path") else yaml_path.parent
    if not root.exists() and not root.is_absolute():
        root = datasets_dir() / root
    return root.resolve()


def _sources(value: str | list[Any], root: Path) -> list[Path]:
    if isinstance(value, str):
        x = (root / value).resolve()
        if not x.exists() and value.startswith("../"):
            x = (root / value[3:]).resolve()
        return [x]
    return [(root / str(v)).resolve() for v in value]


def load_config(yaml_path: Path, split: str) -> YoloConfig:
    """Read and resolve ``yaml_path`` for ``split`` (see the module docstring).

    Raises:
        DatasetError: unreadable YAML, a key of the wrong type, no class names, a pose dataset, no
            such split, or a split's folder / list file that does not exist.
    """
    doc = _document(yaml_path)
    names = _names(doc, yaml_path)
    if not doc.get(split):
        have = [k for k in ("train", "val", "test", "minival") if doc.get(k)]
        raise DatasetError(f"{yaml_path}: no '{split}:' split (it has: {', '.join(have) or 'none'}); add '{split}:' with a folder or "
                           f"a .txt list of images, or pick another split with --camaudit-cases-split (marker: split=)")
    root = _root(doc, yaml_path)
    sources = _sources(doc[split], root)
    missing = [p for p in sources if not p.exists()]
    if missing:
        fetch = (" It has a download: entry, which pytest-camaudit never runs: fetch the dataset first (e.g. run ultralytics on it once)."
                 if doc.get("download") else "")
        raise DatasetError(
            f"{yaml_path}: {split}: {missing[0]} does not exist (dataset root {root}: 'path' is relative to the current folder, else to "
            f"ultralytics' datasets_dir {datasets_dir()}; without 'path', the YAML's folder; each split is relative to the root).{fetch}")
    return YoloConfig(yaml_path, root, names, split, tuple(sources))


def list_images(config: YoloConfig) -> list[tuple[str, str | None]]:
    """Every image of the split, sorted as ultralytics sorts them, each with the ``list.txt:line`` that named it (``None``
    when found in a folder). A listed file need not exist (its entry will say so)."""
    found: list[tuple[str, str | None]] = []
    for src in config.sources:
        if src.is_dir():
            found += [(str(p), None) for p in src.rglob("*.*")  # glob's "**/*.*": hidden names left out
                      if p.is_file() and not any(part.startswith(".") for part in p.relative_to(src).parts)]
            continue
        try:
            lines = src.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{config.yaml}: {config.split}: cannot read the image list {src}: {exc}") from None
        parent = str(src.parent) + os.sep
        for i, line in enumerate(lines, 1):
            x = line.strip()
            if x:
                found.append((x.replace("./", parent, 1) if x.startswith("./") else x, f"{src.name}:{i}"))
    return sorted((p, where) for p, where in found if p.rpartition(".")[-1].lower() in IMAGE_SUFFIXES)


def label_path(image: str) -> str:
    """The label file of an image: the last ``/images/`` of its path replaced by ``/labels/``, the extension by
    ``.txt`` (ultralytics' ``img2label_paths``)."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return sb.join(image.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt"
