"""Write shapes scenes to disk as PNG images plus a COCO-format annotation file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2

from .world import CLASSES, VARIANTS, Layout, cue_objects, make_layout, render_variant, visible_outline


def coco_categories() -> list[dict[str, Any]]:
    """COCO ``categories``: ids equal the detector's label indices (``__background__`` omitted)."""
    return [{"id": i, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES) if i > 0]


def _annotations(layout: Layout, image_id: int, first_id: int) -> list[dict[str, Any]]:
    """COCO annotations of the layout's objects, ids from ``first_id``: the box, and the visible outline as ``segmentation``."""
    out = []
    for k, obj in enumerate(layout.objects):
        x1, y1, x2, y2 = (round(v, 2) for v in obj.box)
        out.append({"id": first_id + k, "image_id": image_id, "category_id": obj.label, "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
                    "area": round((x2 - x1) * (y2 - y1), 2), "iscrowd": 0, "segmentation": visible_outline(layout, k)})
    return out


def write_coco_dataset(
    out_dir: Path,
    seeds: list[int],
    variant: str = "shapes",
    images_subdir: str = "images",
    annotation_file: str = "annotations.json",
) -> Path:
    """Render ``seeds`` of world ``variant`` into ``out_dir``.

    Layout: ``out_dir/images/scene-<seed>.png`` and ``out_dir/annotations.json`` with COCO
    ``bbox = [x, y, width, height]`` in pixels and each object's visible outline as a COCO polygon
    ``segmentation`` (:func:`~pytest_camaudit.zoo.world.visible_outline`; ``area`` stays the box's). Each image entry also records ``seed``, ``variant``
    and ``cue_boxes`` (the spurious tags drawn, as ``[x1, y1, x2, y2]``) so a suite can reason
    about the cue.

    Returns:
        Path of the annotation file.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown world variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    out_dir = Path(out_dir)
    (out_dir / images_subdir).mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, seed in enumerate(seeds, start=1):
        layout = make_layout(seed)
        name = f"scene-{seed}.png"
        cv2.imwrite(str(out_dir / images_subdir / name), cv2.cvtColor(render_variant(layout, variant), cv2.COLOR_RGB2BGR))
        images.append({"id": image_id, "file_name": name, "width": layout.size, "height": layout.size, "seed": seed,
                       "variant": variant, "cue_boxes": [list(layout.cue_box(i)) for i in cue_objects(layout, variant)]})
        annotations.extend(_annotations(layout, image_id, first_id=len(annotations) + 1))
    ann_path = out_dir / annotation_file
    doc = {
        "info": {"description": f"pytest-camaudit procedural {variant} world", "version": "1"},
        "images": images,
        "annotations": annotations,
        "categories": coco_categories(),
    }
    ann_path.write_text(json.dumps(doc, indent=1) + "\n")
    return ann_path
