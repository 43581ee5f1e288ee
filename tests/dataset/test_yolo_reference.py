"""The dataset YAML reader agrees with ultralytics itself (where it is installed): split paths, image lists, label boxes.

The reader reproduces ``check_det_dataset``, ``get_img_files``, ``img2label_paths`` and
``verify_image_label`` without importing ultralytics; here the two are run on the same files.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from pytest_camaudit.dataset.entries import load_entries
from pytest_camaudit.dataset.formats.yolo_config import label_path, list_images, load_config
from pytest_camaudit.detectors.ultralytics.runtime import offline_ultralytics

try:
    offline_ultralytics()
except ImportError:
    pass
pytest.importorskip("ultralytics", reason="ultralytics is not installed (pip install 'pytest-camaudit[yolo]')")


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    for sub, name, orientation in (("val", "a.png", None), ("val/deeper", "b.jpg", 6), ("val", "c.png", None), ("test", "d.png", None)):
        (root / "images" / sub).mkdir(parents=True, exist_ok=True)
        img = Image.fromarray(np.full((100, 200, 3), 80, np.uint8))
        exif = Image.Exif()
        if orientation:
            exif[0x0112] = orientation
        img.save(root / "images" / sub / name, exif=exif.tobytes())
    labels = {"val/a.txt": "0 0.5 0.5 0.2 0.4\n1 0.3 0.3 0.1 0.2\n", "val/deeper/b.txt": "1 0.1 0.2 0.3 0.2 0.2 0.6 0.05 0.5\n",
              "test/d.txt": "0 0.5 0.5 0.5 0.5\n"}
    for rel, text in labels.items():
        (root / "labels" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "labels" / rel).write_text(text)
    (root / "lists").mkdir()
    (root / "lists" / "test.txt").write_text("./../images/test/d.png\n")
    monkeypatch.chdir(tmp_path)
    return root


@pytest.mark.parametrize("yaml", [
    "path: ds\ntrain: images/val\nval: images/val\ntest: lists/test.txt\nnames: [cat, dog]\n",  # relative to the current folder
    "train: images/val\nval: [images/val]\ntest: lists/test.txt\nnames: {0: cat, 1: dog}\n",  # no path: the YAML's folder
    "path: ds\ntrain: ../images/val\nval: ../images/val\ntest: lists/test.txt\nnc: 2\n",  # '../x' missing: tried as 'x'
])
@pytest.mark.parametrize("split", ["val", "test"])
def test_split_images_and_boxes_match_ultralytics(dataset, yaml, split):
    from ultralytics.data.base import BaseDataset
    from ultralytics.data.utils import check_det_dataset, img2label_paths, verify_image_label

    (dataset / "data.yaml").write_text(yaml)
    theirs = check_det_dataset(str(dataset / "data.yaml"), autodownload=False)
    config = load_config(dataset / "data.yaml", split)
    assert config.names == tuple(theirs["names"].values())
    assert [str(p) for p in config.sources] == (theirs[split] if isinstance(theirs[split], list) else [theirs[split]])
    their_images = BaseDataset.get_img_files(SimpleNamespace(prefix="", fraction=1.0), theirs[split])
    assert [os.path.abspath(p) for p, _ in list_images(config)] == [os.path.abspath(p) for p in their_images]
    assert [label_path(p) for p in their_images] == img2label_paths(their_images)
    entries = load_entries(dataset / "data.yaml", split=split)
    for entry, im in zip(entries, their_images, strict=True):
        _, lb, (h, w), *_ = verify_image_label((im, img2label_paths([im])[0], "", False, len(theirs["names"]), 0, 0, False))
        assert len(entry.objects) == len(lb) and (entry.size is None or entry.size == (w, h))
        for obj, (cls, cx, cy, bw, bh) in zip(entry.objects, lb, strict=True):
            assert obj.label == theirs["names"][int(cls)]
            np.testing.assert_allclose(obj.box, [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], atol=1e-3)
