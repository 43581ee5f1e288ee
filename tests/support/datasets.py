"""The same shapes scenes written as a COCO file, an ultralytics dataset and a Pascal VOC root (the zoo's writers)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pytest_camaudit.zoo.dataset import write_coco_dataset
from pytest_camaudit.zoo.formats import coco_to_voc, coco_to_yolo


@dataclass(frozen=True)
class Formats:
    """Paths to give ``--camaudit-cases``, relative to the folder they were written in."""

    coco: str = "coco/annotations.json"
    yolo: str = "yolo/data.yaml"
    voc: str = "VOCdevkit/VOC2012"

    def all(self) -> dict[str, str]:
        return {"coco": self.coco, "yolo": self.yolo, "voc": self.voc}


def write_formats(folder: Path, seeds: list[int], variant: str = "shapes", background: bool = False) -> Formats:
    """``folder/coco`` (the zoo's COCO file, boxes only), ``folder/yolo`` and ``folder/VOCdevkit/VOC2012`` converted from it.

    ``background``: the COCO file also lists ``background.png``, a plain grey image without annotations.
    The zoo writes each object's outline too; it is dropped here, so the three formats hold the same (boxes).
    """
    ann = write_coco_dataset(folder / "coco", seeds, variant)
    doc = json.loads(ann.read_text())
    for a in doc["annotations"]:
        a.pop("segmentation", None)
    if background:
        Image.fromarray(np.full((160, 160, 3), 128, np.uint8)).save(folder / "coco" / "images" / "background.png")
        doc["images"].append({"id": len(doc["images"]) + 1, "file_name": "background.png", "width": 160, "height": 160})
    ann.write_text(json.dumps(doc))
    coco_to_yolo(ann, folder / "coco" / "images", folder / "yolo")
    coco_to_voc(ann, folder / "coco" / "images", folder / "VOCdevkit" / "VOC2012")
    return Formats()


def voc_object(name: str, box: tuple[int, int, int, int], difficult: int = 0) -> str:
    """An ``<object>`` element; ``box`` in VOC's 1-based inclusive pixels."""
    xmin, ymin, xmax, ymax = box
    return (f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
            f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>\n")


def add_voc_object(root: Path, image_id: str, element: str) -> None:
    """Append ``element`` to the objects of ``Annotations/<image_id>.xml``."""
    xml = root / "Annotations" / f"{image_id}.xml"
    xml.write_text(xml.read_text().replace("</annotation>", element + "</annotation>"))
