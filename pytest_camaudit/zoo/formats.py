"""A COCO dataset written again as an ultralytics (YOLO) dataset or a Pascal VOC root, the same boxes exactly.

``python -m pytest_camaudit.zoo make-dataset --format yolo|voc`` uses these, so a user can try
``pytest --camaudit-cases=DIR/data.yaml`` or ``--camaudit-cases=DIR`` on the shapes world; the
project's tests use them to check that the three formats give the same results. Boxes only (a
COCO ``segmentation`` is not carried over); ``iscrowd`` regions become VOC ``difficult`` objects
and are left out of YOLO labels (YOLO has no such flag). Images are copied as they are.

* **YOLO**: ``images/<split>/<file>``, ``labels/<split>/<stem>.txt`` (``class cx cy w h``
  normalised, class = the category's position in ``categories``), ``data.yaml`` with ``train`` and
  ``val`` both naming the split's folder and no ``path`` (the YAML's folder is the root). An image
  without objects gets no label file (a background image).
* **VOC**: ``JPEGImages/<file>`` (whatever the file's format), ``Annotations/<stem>.xml`` with VOC's
  1-based inclusive ``<bndbox>`` (``xmin = x1 + 1``, ``xmax = x2``: the same pixel edges),
  ``ImageSets/Main/<split>.txt``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape


def _coco(ann_file: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[Any, list[dict[str, Any]]]]:
    doc = json.loads(Path(ann_file).read_text(encoding="utf-8"))
    cats = sorted(doc["categories"], key=lambda c: c["id"])
    by_image: dict[Any, list[dict[str, Any]]] = {im["id"]: [] for im in doc["images"]}
    for ann in doc["annotations"]:
        by_image[ann["image_id"]].append(ann)
    return doc, cats, by_image


def _num(v: float) -> str:
    return f"{v:.10g}"


def coco_to_yolo(ann_file: Path, images_dir: Path, out_dir: Path, split: str = "val") -> Path:
    """Write the COCO file ``ann_file`` (images in ``images_dir``) as a YOLO dataset in ``out_dir``; returns ``data.yaml``."""
    doc, cats, by_image = _coco(ann_file)
    index = {c["id"]: i for i, c in enumerate(cats)}
    out_dir = Path(out_dir)
    (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
    (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
    for im in doc["images"]:
        shutil.copyfile(Path(images_dir) / im["file_name"], out_dir / "images" / split / im["file_name"])
        w, h = im["width"], im["height"]
        lines = [f"{index[a['category_id']]} {_num((a['bbox'][0] + a['bbox'][2] / 2) / w)} {_num((a['bbox'][1] + a['bbox'][3] / 2) / h)} "
                 f"{_num(a['bbox'][2] / w)} {_num(a['bbox'][3] / h)}" for a in by_image[im["id"]] if not a.get("iscrowd")]
        if lines:
            (out_dir / "labels" / split / Path(im["file_name"]).with_suffix(".txt")).write_text("\n".join(lines) + "\n")
    names = "\n".join(f"  {i}: {json.dumps(c['name'])}" for i, c in enumerate(cats))
    yaml_path = out_dir / "data.yaml"
    yaml_path.write_text(f"# written by pytest_camaudit.zoo from {Path(ann_file).name}\ntrain: images/{split}\nval: images/{split}\n"
                         f"names:\n{names}\n")
    return yaml_path


def _voc_xml(im: dict[str, Any], anns: list[dict[str, Any]], names: dict[Any, str]) -> str:
    objects = []
    for a in anns:
        x, y, w, h = a["bbox"]
        objects.append(
            f"  <object>\n    <name>{escape(names[a['category_id']])}</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
            f"    <difficult>{1 if a.get('iscrowd') else 0}</difficult>\n    <bndbox>\n      <xmin>{_num(x + 1)}</xmin>\n"
            f"      <ymin>{_num(y + 1)}</ymin>\n      <xmax>{_num(x + w)}</xmax>\n      <ymax>{_num(y + h)}</ymax>\n    </bndbox>\n  </object>\n")
    return (f"<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{escape(im['file_name'])}</filename>\n"
            f"  <size>\n    <width>{im['width']}</width>\n    <height>{im['height']}</height>\n    <depth>3</depth>\n  </size>\n"
            f"  <segmented>0</segmented>\n{''.join(objects)}</annotation>\n")


def coco_to_voc(ann_file: Path, images_dir: Path, out_dir: Path, split: str = "val") -> Path:
    """Write the COCO file ``ann_file`` (images in ``images_dir``) as a Pascal VOC root ``out_dir``; returns ``out_dir``."""
    doc, cats, by_image = _coco(ann_file)
    names = {c["id"]: c["name"] for c in cats}
    out_dir = Path(out_dir)
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    ids = []
    for im in doc["images"]:
        stem = Path(im["file_name"]).stem
        shutil.copyfile(Path(images_dir) / im["file_name"], out_dir / "JPEGImages" / im["file_name"])
        (out_dir / "Annotations" / f"{stem}.xml").write_text(_voc_xml(im, by_image[im["id"]], names))
        ids.append(stem)
    (out_dir / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return out_dir
