"""The dataset readers on small hand-written datasets: what each format's conventions give, what each fault says."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from PIL import Image

from pytest_camaudit.dataset.entries import load_entries
from pytest_camaudit.dataset.formats import format_of, read_dataset
from pytest_camaudit.datatypes import MaskOutline, PolygonOutline
from pytest_camaudit.errors import DatasetError


def image(path, size=(200, 100), orientation=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.full((size[1], size[0], 3), 90, np.uint8))
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(path, exif=exif.tobytes())
    else:
        img.save(path)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.fixture
def yolo(tmp_path):
    """data.yaml, images/val/{a,b,c}.png (200x100), labels for a and b; c is a background image."""
    for name in "abc":
        image(tmp_path / "images" / "val" / f"{name}.png")
    write(tmp_path / "labels" / "val" / "a.txt", "0 0.5 0.5 0.2 0.4\n1 0.25 0.25 0.1 0.1\n")
    write(tmp_path / "labels" / "val" / "b.txt", "1 0.1 0.2 0.3 0.2 0.2 0.6\n")  # a triangle
    write(tmp_path / "data.yaml", "train: images/val\nval: images/val\nnames: [cat, dog]\n")
    return tmp_path


def boxes(entry):
    return [(o.label, tuple(round(v, 6) for v in o.box)) for o in entry.objects]


def test_yolo_boxes_and_polygons_are_denormalised_and_an_unlabelled_image_is_background(yolo):
    a, b, c = load_entries(yolo / "data.yaml")
    assert [e.id for e in (a, b, c)] == ["a.png", "b.png", "c.png"] and not any(e.problems for e in (a, b, c))
    assert boxes(a) == [("cat", (80.0, 30.0, 120.0, 70.0)), ("dog", (40.0, 20.0, 60.0, 30.0))]
    assert [o.annotation_id for o in a.objects] == [1, 2] and a.where == "labels/val/a.txt" and a.size == (200, 100)
    (tri,) = b.objects
    assert boxes(b) == [("dog", (20.0, 20.0, 60.0, 60.0))]  # the polygon's bounds
    assert tri.outline == PolygonOutline(((20.0, 20.0, 60.0, 20.0, 40.0, 60.0),))
    assert c.objects == () and c.size is None and c.problems == ()  # background: nothing to check
    assert a.objects[0].outline is None and a.classes == (("cat", 1), ("dog", 2))


def test_yolo_names_as_a_dict_and_splits_as_lists_and_image_lists(yolo):
    write(yolo / "val.txt", "./images/val/b.png\n\n./images/val/a.png\n")
    write(yolo / "data.yaml", f"path: {yolo}\nval: [images/val]\ntest: val.txt\nnames: {{0: cat, '1': dog}}\n")
    entries = load_entries(yolo / "data.yaml", split="test")
    assert [boxes(e) for e in load_entries(yolo / "data.yaml")][:2] == [boxes(e) for e in entries]
    assert [e.id for e in entries] == ["images/val/a.png", "images/val/b.png"]  # below the root, sorted as ultralytics sorts


def test_yolo_coordinates_follow_the_exif_rotation(tmp_path):
    image(tmp_path / "images" / "phone.jpg", size=(200, 100), orientation=6)  # stored 200x100, shown 100x200
    write(tmp_path / "labels" / "phone.txt", "0 0.5 0.5 0.2 0.1\n")
    write(tmp_path / "d.yaml", "val: images\nnames: [x]\n")
    (entry,) = load_entries(tmp_path / "d.yaml")
    assert entry.size == (100, 200) and boxes(entry) == [("x", (40.0, 90.0, 60.0, 110.0))]


@pytest.mark.parametrize(("line", "says"), [
    ("0 0.5 0.5 0.2", "labels/val/a.txt:2: expected 5 fields 'class cx cy w h' (a box) or 'class x1 y1 x2 y2 x3 y3 …' (a polygon: an odd number >= 7), got 4"),
    ("0 0.5 0.5 0.2 0.2 0.1 0.1 0.1 0.1 0.3 0.3 0.2 0.1 0.3", "got 14; keypoint (pose) labels are not supported"),
    ("2 0.5 0.5 0.2 0.2", "labels/val/a.txt:2: class id 2 is not in names (0..1 of the dataset YAML)"),
    ("1.5 0.5 0.5 0.2 0.2", "class id 1.5 is not in names"),
    ("0 1.2 0.5 0.2 0.2", "labels/val/a.txt:2: coordinate 1.2 is outside [0, 1] (YOLO labels are normalised by the image's width and height)"),
    ("0 0.5 nan 0.2 0.2", "expected numbers, got '0 0.5 nan 0.2 0.2'"),
    ("0 0.5 0.5 0 0.2", "box is degenerate"),
    ("0 0.1 0.1 0.2 0.1 0.3 0.3", "labels/val/a.txt:2: the file mixes box rows (5 fields) and polygon rows"),
])
def test_a_broken_label_line_is_a_problem_of_its_image_with_file_and_line(yolo, line, says):
    write(yolo / "labels" / "val" / "a.txt", f"0 0.5 0.5 0.2 0.4\n{line}\n")
    a, b, c = load_entries(yolo / "data.yaml")
    assert any(says in p for p in a.problems), a.problems
    assert not b.problems and not c.problems


@pytest.mark.usefixtures("pillow_open_patched_like_ultralytics")
def test_a_corrupt_image_is_a_problem_of_its_image_when_ultralytics_patched_pillow(yolo):
    (yolo / "images" / "val" / "a.png").write_bytes(b"not a png")
    a, b, c = load_entries(yolo / "data.yaml")
    assert any("is not an image Pillow can read" in p for p in a.problems), a.problems
    assert not b.problems and not c.problems


def test_yolo_tolerates_what_ultralytics_tolerates(yolo):
    # 1 % past the edge is clipped; a repeated row counts once; a blank line is nothing
    write(yolo / "labels" / "val" / "a.txt", "0 1.005 0.5 0.02 0.4\n\n0 1.005 0.5 0.02 0.4\n")
    (a, *_) = load_entries(yolo / "data.yaml")
    assert not a.problems and boxes(a) == [("cat", (199.0, 30.0, 200.0, 70.0))]


def test_a_listed_image_that_is_missing_names_the_list_and_line(yolo):
    write(yolo / "val.txt", "./images/val/a.png\n./images/val/gone.png\n")
    write(yolo / "data.yaml", "val: val.txt\nnames: [cat, dog]\n")
    a, gone = load_entries(yolo / "data.yaml")
    assert not a.problems and gone.id == "images/val/gone.png"
    assert gone.problems == (f"val.txt:2: image file not found: {yolo / 'images' / 'val' / 'gone.png'}",)


@pytest.mark.parametrize(("yaml", "says"), [
    ("val: images/val\nnames: cat\n", "data.yaml: 'names' must be a list or dict, not str; fix that key"),
    ("train: images/val\nnames: [cat]\n", "data.yaml: no 'val:' split (it has: train); add 'val:' with a folder or a .txt list of images, "
                                          "or pick another split with --camaudit-cases-split (marker: split=)"),
    ("val: images/val\n", "data.yaml: no 'names' (nor 'nc'); add the class names"),
    ("val: images/val\nnames: [a, b]\nnc: 3\n", "'names' has 2 classes but 'nc: 3'; make them agree"),
    ("val: images/val\nnames: {0: a, 2: b}\n", "'names' must number its 2 classes 0..1, got indices [0, 2]"),
    ("val: images/val\nnames: [person]\nkpt_shape: [17, 3]\n", "is a pose (keypoint) dataset (kpt_shape: [17, 3]); pytest-camaudit checks"),
    ("val: images/nowhere\nnames: [a]\n", "val: {root}/images/nowhere does not exist (dataset root {root}: 'path' is relative to the current folder"),
    ("val: [\n", "data.yaml is not a YAML file pytest-camaudit can read"),
    ("- a\n- b\n", "data.yaml: expected a mapping with path, train/val/test and names, got list"),
])
def test_a_broken_dataset_yaml_raises_saying_what_to_fix(yolo, yaml, says):
    write(yolo / "data.yaml", yaml)
    with pytest.raises(DatasetError) as err:
        load_entries(yolo / "data.yaml")
    assert says.format(root=yolo) in str(err.value)


def test_a_download_entry_is_never_run(yolo, tmp_path):
    marker = tmp_path / "downloaded"
    write(yolo / "data.yaml", f"val: images/missing\nnames: [a]\ndownload: |\n  open({str(marker)!r}, 'w').write('ran')\n")
    with pytest.raises(DatasetError, match="never runs: fetch the dataset first"):
        load_entries(yolo / "data.yaml")
    assert not marker.exists()


def test_path_is_resolved_as_ultralytics_resolves_it(yolo, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(yolo / "data.yaml", "path: ds\nval: images/val\nnames: [cat, dog]\n")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    (tmp_path / "here" / "ds").symlink_to(yolo)  # relative to the current folder first
    assert len(load_entries(yolo / "data.yaml")) == 3
    (tmp_path / "here" / "ds").unlink()  # then below ultralytics' datasets_dir (its settings.json)
    (elsewhere / "ds").symlink_to(yolo)
    config = tmp_path / "cfg"
    write(config / "Ultralytics" / "settings.json", json.dumps({"datasets_dir": str(elsewhere)}))
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(config))
    assert len(load_entries(yolo / "data.yaml")) == 3
    write(yolo / "data.yaml", "path: ds\nval: ../images/val\nnames: [cat, dog]\n")  # '../x' missing: tried as 'x'
    assert len(load_entries(yolo / "data.yaml")) == 3


VOC_XML = """
<annotation>
  <filename>{name}.jpg</filename>
  <size><width>200</width><height>100</height><depth>3</depth></size>
  <object><name>cat</name><difficult>0</difficult>
    <bndbox><xmin>1</xmin><ymin>11</ymin><xmax>50</xmax><ymax>60</ymax></bndbox></object>
  <!-- <object> in a comment is not an object -->
  <object><name>dog</name><difficult>1</difficult>
    <bndbox><xmin>101</xmin><ymin>1</ymin><xmax>200</xmax><ymax>100</ymax></bndbox></object>
</annotation>
"""


@pytest.fixture
def voc(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    for name in ("000001", "000002"):
        image(root / "JPEGImages" / f"{name}.jpg")
        write(root / "Annotations" / f"{name}.xml", VOC_XML.format(name=name))
    write(root / "ImageSets" / "Main" / "val.txt", "000001\n000002\n")
    write(root / "ImageSets" / "Main" / "train.txt", "000002\n")
    write(root / "ImageSets" / "Main" / "cat_val.txt", "000001  1\n")
    return root


def test_voc_boxes_are_1_based_inclusive_and_difficult_objects_are_set_apart(voc):
    first, second = load_entries(voc)
    assert first.id == "000001.jpg" and first.where == "Annotations/000001.xml" and first.size == (200, 100)
    assert boxes(first) == [("cat", (0.0, 10.0, 50.0, 60.0))]  # pixels 1..50 (1-based) = edges 0..50
    assert [o.label for o in first.ignored] == ["dog"] and first.ignored[0].box == (100.0, 0.0, 200.0, 100.0)
    assert first.crowd == 1 and first.classes == (("cat", 2),)
    assert [e.id for e in load_entries(voc, split="train")] == ["000002.jpg"]


@pytest.mark.parametrize(("xml", "says"), [
    ("<annotation><object><name>cat</name>\n</annotation>", "Annotations/000001.xml:2: the XML does not parse: mismatched tag: line 2, column 2"),
    ('<!DOCTYPE a [<!ENTITY e "x">]><annotation>&e;</annotation>', "Annotations/000001.xml: refused: EntitiesForbidden"),
    ("<annotation>\n<filename>000001.jpg</filename>\n<object><name>cat</name><bndbox><xmin>10</xmin><ymin>5</ymin><xmax>5</xmax>"
     "<ymax>9</ymax></bndbox></object></annotation>", "Annotations/000001.xml:3: cat: <bndbox> xmin=10 ymin=5 xmax=5 ymax=9 (1-based, inclusive) is degenerate"),
    ("<annotation><size><width>200</width><height>100</height></size>\n\n<object>\n<name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
     "<xmax>300</xmax><ymax>9</ymax></bndbox></object></annotation>", "Annotations/000001.xml:3: cat: <bndbox> xmin=1 ymin=1 xmax=300 ymax=9 "
                                                                      "(1-based, inclusive) = [x1, y1, x2, y2] [0.0, 0.0, 300.0, 9.0] lies outside the 200x100 image"),
    ("<annotation><filename>nope.jpg</filename></annotation>", "Annotations/000001.xml: image file not found: JPEGImages/nope.jpg"),
])
def test_a_broken_voc_annotation_is_a_problem_of_its_image_with_file_and_line(voc, xml, says):
    (voc / "Annotations" / "000001.xml").write_text(xml)
    first, second = load_entries(voc)
    assert any(says in p for p in first.problems), first.problems
    assert not second.problems


def test_an_image_id_without_annotation_names_the_image_set_line(voc):
    (voc / "Annotations" / "000002.xml").unlink()
    first, second = load_entries(voc)
    assert second.problems == ("ImageSets/Main/val.txt:2: image id '000002' has no annotation file Annotations/000002.xml",)


def test_a_folder_that_is_no_voc_root_or_has_no_such_image_set_raises(voc):
    with pytest.raises(DatasetError, match=r"no image set 'test' \(ImageSets/Main/test.txt; it has: train, val\); pick one with --camaudit-cases-split"):
        load_entries(voc, split="test")
    with pytest.raises(DatasetError, match=r"is a VOCdevkit folder, not a VOC root; pass one of its datasets: .*VOCdevkit/VOC2012"):
        load_entries(voc.parent)
    with pytest.raises(DatasetError, match="is a folder but not a Pascal VOC root"):
        load_entries(voc / "JPEGImages")
    with pytest.raises(DatasetError, match=r"not a dataset pytest-camaudit reads; expected a COCO JSON file, an ultralytics dataset YAML, a Pascal"):
        format_of(voc / "ImageSets" / "Main" / "val.txt")
    with pytest.raises(DatasetError, match="an images folder .* applies to COCO files only"):
        read_dataset(voc, images_dir=voc)


def coco(tmp_path, annotations):
    image(tmp_path / "images" / "a.png")
    doc = {"images": [{"id": 1, "file_name": "a.png", "width": 200, "height": 100}],
           "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], **a} for i, a in enumerate(annotations)],
           "categories": [{"id": 1, "name": "cat"}]}
    return write(tmp_path / "ann.json", json.dumps(doc))


def test_coco_segmentation_is_kept_as_the_outline(tmp_path):
    counts = [0] * 0 + [1010, 20, 80, 20] + [200 * 100 - 1130]  # column-major runs: a 20x2 patch
    path = coco(tmp_path, [{"segmentation": [[10, 10, 30, 10, 30, 30], [1, 2]]}, {"segmentation": []},
                           {"segmentation": {"size": [100, 200], "counts": counts}, "iscrowd": 1}])
    (entry,) = load_entries(path)
    (tri, plain), (crowd,) = entry.objects, entry.ignored
    assert tri.outline == PolygonOutline(((10.0, 10.0, 30.0, 10.0, 30.0, 30.0),)) and plain.outline is None  # 2-point ring dropped
    assert isinstance(crowd.outline, MaskOutline) and entry.crowd == 1
    mask = crowd.outline.mask(100, 200)
    assert mask.sum() == 40 and mask[10:30, 10:12].all() and crowd.outline.bounds() == (10.0, 10.0, 12.0, 30.0)


@pytest.mark.parametrize(("segmentation", "says"), [
    ([[10, 10, 30, "x", 30, 30]], "segmentation polygons must be lists of finite numbers"),
    ({"size": [100, 200], "counts": [5, 5]}, "RLE counts must be a string or whole numbers >= 0 summing to height x width = 20000"),
    ({"size": [50, 50], "counts": "abc"}, "RLE size [height, width] = [50, 50] differs from the 200x100 image"),
    ("polygon", "is neither polygons nor an RLE mask"),
])
def test_a_broken_coco_segmentation_is_a_problem_of_its_object(tmp_path, segmentation, says):
    (entry,) = load_entries(coco(tmp_path, [{"segmentation": segmentation}]))
    assert len(entry.problems) == 1 and says in entry.problems[0] and entry.problems[0].startswith("annotation 1 (cat): ")


def test_polygon_masks_take_the_pixels_whose_centres_are_inside():
    box = PolygonOutline(((2.0, 1.0, 6.0, 1.0, 6.0, 4.0, 2.0, 4.0),))
    mask = box.mask(6, 8)
    expected = np.zeros((6, 8), bool)
    expected[1:4, 2:6] = True
    assert (mask == expected).all() and box.bounds() == (2.0, 1.0, 6.0, 4.0)
    tri = PolygonOutline(((0.0, 0.0, 100.0, 0.0, 0.0, 100.0),)).mask(100, 100)
    assert abs(tri.sum() - 5000) <= 100 and tri[0, 0] and not tri[99, 99]  # half the square, to the diagonal's pixels
    two = PolygonOutline(((0.0, 0.0, 2.0, 0.0, 2.0, 2.0, 0.0, 2.0), (5.0, 5.0, 7.0, 5.0, 7.0, 7.0, 5.0, 7.0)))
    assert two.mask(8, 8).sum() == 8  # parts of one object: their union
    with pytest.raises(ValueError, match="covers a 4x3 image, not 5x3"):
        MaskOutline((3, 4), b"").mask(3, 5)


def test_class_names_are_mapped_and_an_empty_target_leaves_a_class_out(voc):
    first, _ = load_entries(voc, names="cat=kitten, dog=")
    assert [o.label for o in first.objects] == ["kitten"] and first.classes == (("kitten", 2),)
    first, _ = load_entries(voc, names={"cat": ""})  # left out: set apart like the difficult dog
    assert first.objects == () and sorted(o.label for o in first.ignored) == ["cat", "dog"] and first.crowd == 2 and first.classes == ()


@pytest.mark.parametrize(("text", "says"), [
    ("aeroplane", "expected DATASET=DETECTOR pairs such as 'aeroplane=airplane, tvmonitor=tv', got 'aeroplane'"),
    ("=airplane", "a pair maps nothing to 'airplane'"),
    ("a=b; a=c", "'a' is mapped twice ('b' and 'c')"),
])
def test_a_malformed_name_map_says_how_to_write_it(text, says):
    import argparse

    from pytest_camaudit.dataset.names import name_map

    assert name_map("diningtable=dining table,\ntvmonitor = tv") == {"diningtable": "dining table", "tvmonitor": "tv"}
    with pytest.raises(argparse.ArgumentTypeError) as err:
        name_map(text)
    assert says in str(err.value)
