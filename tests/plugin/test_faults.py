"""The bad-input and fault matrix, each row run through pytest as a user would.

Every row is one inner session: a good audit before and after the faulty one and a plain test,
with ``--camaudit-report``. A row passes when the faulty test ends as expected with an error that
names the case and says what to do, the good tests are unaffected, and the faulty case has its
card in the report (with its error, or with its conversion note when the input was usable).
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from pytest_camaudit.zoo.world import make_scene

SCENE = 20_000_000
CIRCLE = "[37, 4, 68, 36]"  # the circle of scene 20000000, as displayed
SQUARE_ROT = "[4, 92, 36, 123]"  # where that circle lands after a 90° counter-clockwise turn

INNER = '''
import numpy as np, pytest
from PIL import Image
GOOD = "good.png"
POISON = np.asarray(Image.open(GOOD).convert("RGB").resize((97, 97)))  # the faulty models misbehave on 97 px wide images

def test_good_before(camaudit):
    camaudit.audit(GOOD).assert_detected("circle", {circle})

def test_bad(camaudit):
{body}

def test_good_after(camaudit):
    camaudit.audit(GOOD).assert_detected("circle", {circle})
    model = camaudit.detector.model
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0

def test_plain():
    pass
'''

FAULTY = '''
import pytest, torch
from torch import nn
from pytest_camaudit import Detector
from pytest_camaudit.zoo.model import load_zoo_detector

MODE = {mode!r}

class Backbone(nn.Module):
    """The real backbone; on a 97-px-wide image its output is all zero or all one."""
    def __init__(self, inner):
        super().__init__()
        self.inner, self.out_channels = inner, inner.out_channels
        self.poisoned = False
    def forward(self, x):
        feats = self.inner(x)
        if self.poisoned and MODE in ("zero-cam", "constant-cam"):
            fill = 0.0 if MODE == "zero-cam" else 1.0
            feats = type(feats)((k, torch.full_like(v, fill) + 0 * v) for k, v in feats.items())
        return feats

class Faulty(nn.Module):
    """The shapes detector, misbehaving (MODE) on images 97 px wide and only on those."""
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.transform = inner.transform
        inner.backbone = self.backbone = Backbone(inner.backbone)
    def forward(self, images):
        poisoned = any(im.shape[-1] == 97 for im in images)
        self.backbone.poisoned = poisoned
        if poisoned and MODE == "raise":
            raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")
        out = self.inner(images)
        if poisoned and MODE == "no-detections":
            return [{{"boxes": o["boxes"][:0], "labels": o["labels"][:0], "scores": o["scores"][:0]}} for o in out]
        if poisoned and MODE == "bad-output":
            return [{{"boxes": o["boxes"], "labels": o["labels"]}} for o in out]
        if poisoned and MODE == "nan-scores":
            return [dict(o, scores=o["scores"] * float("nan")) for o in out]
        return out

@pytest.fixture(scope="session")
def camaudit_detector():
    model, classes, _ = load_zoo_detector("shapes")
    return Detector.wrap(Faulty(model), classes, name="faulty-shapes", device="cpu")
'''


@dataclass
class Row:
    """One matrix row: how the faulty test is written, and what must come out."""

    id: str
    body: str
    says: list[str]
    outcome: str = "failed"  # of test_bad
    card: str = ""  # text its report card must show (default: the first of `says`)
    make: Callable[[Path], None] | None = None
    conftest: str = ""
    args: list[str] = field(default_factory=list)


def _scene() -> np.ndarray:
    return np.ascontiguousarray(make_scene(SCENE).image)


def _save(name: str, mode: str | None = None, **kw) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        img = Image.fromarray(_scene())
        (img.convert(mode) if mode else img).save(d / name, **kw)
    return make


def _truncated(name: str) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        _save(name, quality=95)(d) if name.endswith(".jpg") else _save(name)(d)
        data = (d / name).read_bytes()
        (d / name).write_bytes(data[: len(data) // 2])
    return make


def _bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes(data)


def _rgba(d: Path) -> None:
    rgba = np.dstack([_scene(), np.full((160, 160), 255, np.uint8)])
    rgba[:2, :2, 3] = 0  # a transparent corner: composited on white
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")


def _png16(d: Path, gray: bool) -> None:
    img = _scene().astype(np.uint16) * 257
    if gray:
        Image.fromarray((img.mean(axis=2)).astype(np.uint16)).save(d / "gray16.png")
    else:
        cv2.imwrite(str(d / "rgb16.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def _exif_rotated(d: Path) -> None:
    stored = np.rot90(_scene(), k=1)  # what the camera wrote; orientation 6 turns it back for display
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(d / "phone.jpg", quality=95, exif=exif.tobytes())


def _huge_header(d: Path) -> None:
    """A valid PNG header claiming 10000 x 9000 pixels (never decoded: refused from the header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 10_000, 9_000, 8, 2, 0, 0, 0)
    (d / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _large(d: Path) -> None:
    cv2.imwrite(str(d / "large.jpg"), cv2.cvtColor(cv2.resize(_scene(), (4000, 3000)), cv2.COLOR_RGB2BGR))


def _audit(name: str, extra: str = "") -> str:
    return f"    case = camaudit.audit({name!r})\n" + "".join(f"    {line}\n" for line in extra.splitlines() if line)


def _checkpoint(kind: str) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        if kind == "corrupt":
            (d / "model.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
    return make


ROWS = [
    # -- files -------------------------------------------------------------------------------------
    Row("missing-file", _audit("nope.png"), ["ImageInputError: image file nope.png does not exist; check the path"]),
    Row("directory", _audit("."), ["ImageInputError: image path . is not a file (a folder?); pass the path of an image file"]),
    Row("empty-file", _audit("empty.png"), ["image file empty.png is not an image Pillow can read", "replace it"],
        make=_bytes("empty.png", b"")),
    Row("corrupt-png", _audit("corrupt.png"), ["image file corrupt.png is not an image Pillow can read"],
        make=_bytes("corrupt.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)),
    Row("corrupt-jpeg", _audit("corrupt.jpg"), ["image file corrupt.jpg is not an image Pillow can read"],
        make=_bytes("corrupt.jpg", b"\xff\xd8\xff\xe0" + b"\x00garbage" * 64)),
    Row("truncated-jpeg", _audit("cut.jpg"), ["image file cut.jpg is corrupt or truncated", "re-export or replace it"],
        make=_truncated("cut.jpg")),
    Row("truncated-png", _audit("cut.png"), ["image file cut.png is corrupt or truncated", "re-export or replace it"],
        make=_truncated("cut.png")),
    Row("too-large", _audit("huge.png"), ["image file huge.png is 10000x9000 = 90000000 pixels, above the limit", "downscale it first"],
        make=_huge_header),
    # -- usable images, converted: the case passes and its card notes the conversion ---------------
    Row("png-16bit-rgb", _audit("rgb16.png", f'case.assert_detected("circle", {CIRCLE})'), [], "passed", "rgb16.png",
        make=lambda d: _png16(d, gray=False)),
    Row("png-16bit-gray", _audit("gray16.png", "assert case.image.pixels.dtype == np.uint8 and case.size == (160, 160)"),
        [], "passed", "I;16 image scaled to 8 bits", make=lambda d: _png16(d, gray=True)),
    Row("rgba", _audit("rgba.png", f'case.assert_detected("circle", {CIRCLE})'), [], "passed",
        "RGBA with alpha composited on white", make=_rgba),
    Row("grayscale", _audit("gray.png", "assert case.image.pixels.shape == (160, 160, 3)"), [], "passed",
        "L converted to RGB", make=_save("gray.png", "L")),
    Row("palette", _audit("pal.png", f'case.assert_detected("circle", {CIRCLE})'), [], "passed",
        "P converted to RGB", make=_save("pal.png", "P")),
    Row("cmyk-jpeg", _audit("cmyk.jpg", f'case.assert_detected("circle", {CIRCLE})'), [], "passed",
        "CMYK converted to RGB", make=_save("cmyk.jpg", "CMYK", quality=95)),
    Row("exif-rotated", _audit("phone.jpg", f'case.assert_detected("circle", {CIRCLE})'), [], "passed",
        "EXIF orientation 6 applied", make=_exif_rotated),
    Row("large-4000x3000", _audit("large.jpg", 'case.assert_detected("circle", [925, 75, 1700, 675], iou_threshold=0.3)'),
        [], "passed", "4000×3000", make=_large),
    # -- degenerate images and arrays ----------------------------------------------------------------
    Row("one-pixel", '    camaudit.audit(np.full((1, 1, 3), 200, np.uint8), name="dot").assert_detected("circle")\n',
        ["expected circle with score >= 0.50, got no circle detection at any score", "image: dot"]),
    Row("float-out-of-range", '    camaudit.audit(np.full((50, 50, 3), 255.0), name="floats")\n',
        ["a float image must hold values in [0, 1], got values in [255, 255]; divide by 255 or pass uint8 (image: floats)"]),
    Row("channels-first", '    camaudit.audit(np.zeros((3, 64, 64), np.uint8), name="chw")\n',
        ["expected an image array of shape [H, W, 3] (channels last), got [3, 64, 64]; transpose it", "(image: chw)"]),
    # -- malformed expectations ----------------------------------------------------------------------
    Row("nan-threshold", _audit("good.png", 'case.assert_detected("circle", score_threshold=float("nan"))'),
        ["ExpectationError: `score_threshold`: expected a number in [0, 1], got nan", "  image: good.png"]),
    Row("threshold-out-of-range", _audit("good.png", 'case.assert_cam_mass([10, 10, 50, 50], at_least=1.5)'),
        ["ExpectationError: `at_least`: expected a number in [0, 1], got 1.5", "  image: good.png"]),
    Row("box-outside-image", _audit("good.png", 'case.assert_detected("circle", [100, 100, 400, 300])'),
        ["ExpectationError: expected box [100, 100, 400, 300] lies outside the 160x160 image; fix the annotation", "  image: good.png"]),
    Row("degenerate-box", _audit("good.png", 'case.assert_detected("circle", [50, 50, 50, 80])'),
        ["ExpectationError: expected box [50, 50, 50, 80] is degenerate (needs x1 < x2 and y1 < y2", "  image: good.png"]),
    Row("unknown-class", _audit("good.png", 'case.assert_detected("hexagon")'),
        ["ExpectationError: unknown class 'hexagon' for detector shapes; known classes: circle, square, triangle, star", "  image: good.png"]),
    # -- models that misbehave on one image ------------------------------------------------------
    Row("model-raises-in-forward", '    camaudit.audit(POISON, name="poison")\n',
        ["DetectorRuntimeError: detector faulty-shapes raised RuntimeError during forward: CUDA error", "(image: poison)",
         "RuntimeError: CUDA error: an illegal memory access"], conftest="raise"),
    Row("model-returns-nothing", '    camaudit.audit(POISON, name="empty").assert_detected("circle")\n',
        ["expected circle with score >= 0.50, got no circle detection at any score", "top detections: no detections at all", "image: empty"],
        conftest="no-detections"),
    Row("model-bad-output", '    camaudit.audit(POISON, name="odd")\n',
        ["DetectorRuntimeError: detector faulty-shapes returned ['boxes', 'labels'] for an image; expected one dict per image", "(image: odd)"],
        conftest="bad-output"),
    Row("model-nan-scores", '    camaudit.audit(POISON, name="nan")\n',
        ["returned NaN or infinite boxes or scores; the model is numerically broken", "(image: nan)"], conftest="nan-scores"),
    Row("all-zero-cam", '    camaudit.audit(POISON, name="zeros").assert_cam_mass([10, 10, 40, 40], at_least=0.1)\n',
        ["expected eigencam mass >= 0.10 inside box [10, 10, 40, 40], got NaN: the CAM is all zero", "image: zeros"], conftest="zero-cam"),
    Row("constant-cam", '    camaudit.audit(POISON, name="flat").assert_cam_mass([10, 10, 40, 40], at_least=0.1)\n',
        ["got NaN: the CAM is all zero (degenerate activations)", "image: flat"], conftest="constant-cam"),
]

CHECKPOINT_ROWS = [
    Row("missing-checkpoint", "", ["camaudit could not load the detector: detector checkpoint", "model.pt does not exist"],
        "error", "does not exist", make=_checkpoint("missing"), args=["--camaudit-model=model.pt"]),
    Row("corrupt-checkpoint", "", ["camaudit could not load the detector: detector checkpoint", "model.pt"],
        "error", "model.pt", make=_checkpoint("corrupt"), args=["--camaudit-model=model.pt"]),
]


def _setup(pytester: pytest.Pytester, row: Row) -> None:
    Image.fromarray(_scene()).save(pytester.path / "good.png")
    if row.make is not None:
        row.make(pytester.path)
    if row.conftest:
        pytester.makeconftest(FAULTY.format(mode=row.conftest))
    body = row.body or "    pass\n"
    pytester.makepyfile(test_matrix=INNER.format(body=body.rstrip("\n"), circle=CIRCLE))


def _card(html: str, test: str) -> str:
    cards = re.findall(r'<article class="case[^"]*"[^>]*>.*?</article>', html, re.S)
    mine = [c for c in cards if f"test_matrix.py::{test}</div>" in c or f"test_matrix.py::{test} " in c or f"::{test} ·" in c]
    assert mine, f"no card for {test} in the report"
    return mine[0]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_fault_matrix(pytester, row):
    _setup(pytester, row)
    report = pytester.path / "report.html"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--camaudit-report={report}", "--camaudit-report-all", *row.args)
    outcomes = {r.nodeid.split("::")[-1]: (r.outcome if r.when == "call" else "error")
                for r in result.reprec.getreports("pytest_runtest_logreport") if r.when == "call" or r.failed}
    assert outcomes == {"test_good_before": "passed", "test_bad": row.outcome, "test_good_after": "passed", "test_plain": "passed"}
    out = result.stdout.str()
    for text in row.says:
        assert text in out, f"{text!r} not in the output"
    html = report.read_text()
    card = _card(html, "test_bad")
    expected = row.card or row.says[0].split(": ", 1)[-1]
    assert expected in unescape(card), f"{expected!r} not on the card"


@pytest.mark.parametrize("row", CHECKPOINT_ROWS, ids=[r.id for r in CHECKPOINT_ROWS])
def test_checkpoint_faults_fail_every_audit_test_and_spare_the_rest(pytester, row):
    _setup(pytester, row)
    report = pytester.path / "report.html"
    result = pytester.runpytest("-p", "no:cacheprovider", f"--camaudit-report={report}", *row.args)
    result.assert_outcomes(passed=1, errors=3)
    for text in row.says:
        assert text in result.stdout.str()
    html = report.read_text()
    assert html.count('<article class="case error"') == 3 and row.card in html


def test_the_matrix_has_at_least_20_rows():
    assert len(ROWS) + len(CHECKPOINT_ROWS) >= 20


# -- broken dataset entries (--camaudit-cases on a dataset YAML or a VOC root) -------------------------------------------------
# Each row breaks one image of a three-scene dataset: that image's test errors with the file and line, the others and a
# plain test pass, and the report has the broken entry's card. A row whose fault makes the whole dataset unusable is a
# usage error saying what to fix.

DATA_SEEDS = [20_000_000, 20_000_001, 20_000_002]
BROKEN = "scene-20000001"


def _append(rel: str, text: str) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        with open(d / rel, "a") as fh:
            fh.write(text)
    return make


def _listed_missing(d: Path) -> None:
    names = [f"./images/val/scene-{s}.png" for s in DATA_SEEDS]
    (d / "yolo" / "val.txt").write_text("\n".join([*names, f"./images/val/{BROKEN}-gone.png"]) + "\n")
    yaml = d / "yolo" / "data.yaml"
    yaml.write_text(yaml.read_text().replace("val: images/val", "val: val.txt"))


def _cut_xml(d: Path) -> None:
    xml = d / "VOCdevkit" / "VOC2012" / "Annotations" / f"{BROKEN}.xml"
    xml.write_text(xml.read_text().replace("</bndbox>\n  </object>", "</bndbox>\n  </objet>", 1))


def _edit(rel: str, old: str, new: str) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        (d / rel).write_text((d / rel).read_text().replace(old, new))
    return make


YOLO_LABEL = f"yolo/labels/val/{BROKEN}.txt"
DATA_ROWS = [  # (id, dataset, fault, the broken test's id, what it says)
    ("yolo-field-count", "yolo/data.yaml", _append(YOLO_LABEL, "0 0.5 0.5 0.2\n"), BROKEN + ".png",
     f"labels/val/{BROKEN}.txt:4: expected 5 fields 'class cx cy w h' (a box) or 'class x1 y1 x2 y2 x3 y3 …'"),
    ("yolo-class-outside-names", "yolo/data.yaml", _append(YOLO_LABEL, "7 0.5 0.5 0.2 0.2\n"), BROKEN + ".png",
     f"labels/val/{BROKEN}.txt:4: class id 7 is not in names (0..3 of the dataset YAML)"),
    ("yolo-coordinate-outside", "yolo/data.yaml", _append(YOLO_LABEL, "0 0.5 1.5 0.2 0.2\n"), BROKEN + ".png",
     f"labels/val/{BROKEN}.txt:4: coordinate 1.5 is outside [0, 1]"),
    ("yolo-pose-row", "yolo/data.yaml", _append(YOLO_LABEL, "0 0.5 0.5 0.2 0.2 " + "0.5 0.5 2 " * 3 + "\n"), BROKEN + ".png",
     "got 14; keypoint (pose) labels are not supported"),
    ("yolo-missing-image", "yolo/data.yaml", _listed_missing, f"images/val/{BROKEN}-gone.png",
     "val.txt:4: image file not found: "),
    ("voc-xml-does-not-parse", "VOCdevkit/VOC2012", _cut_xml, BROKEN + ".png",
     f"Annotations/{BROKEN}.xml:21: the XML does not parse: mismatched tag: line 21, column 4"),
    ("voc-missing-image", "VOCdevkit/VOC2012", lambda d: (d / "VOCdevkit/VOC2012/JPEGImages" / f"{BROKEN}.png").unlink(), BROKEN + ".png",
     f"Annotations/{BROKEN}.xml: image file not found: JPEGImages/{BROKEN}.png"),
    ("voc-box-outside", "VOCdevkit/VOC2012", _edit(f"VOCdevkit/VOC2012/Annotations/{BROKEN}.xml", "<xmax>", "<xmax>2"), BROKEN + ".png",
     f"Annotations/{BROKEN}.xml:10: circle: <bndbox> xmin=69 ymin=47.78 xmax=2125.12 ymax=103.9 (1-based, inclusive) = [x1, y1, x2, y2]"),
]
USAGE_ROWS = [  # (id, dataset, fault, what the usage error says)
    ("yaml-bad-key", "yolo/data.yaml", _append("yolo/data.yaml", "test: 3\n"), "data.yaml: 'test' must be a str or list, not int; fix that key"),
    ("yaml-missing-split", "yolo/data.yaml", _edit("yolo/data.yaml", "val: images/val", "valid: images/val"),
     "data.yaml: no 'val:' split (it has: train); add 'val:' with a folder or a .txt list of images, or pick another split with"),
    ("yaml-not-yaml", "yolo/data.yaml", _append("yolo/data.yaml", "names: [\n"), "data.yaml is not a YAML file pytest-camaudit can read"),
    ("voc-missing-image-set", "VOCdevkit/VOC2012", lambda d: (d / "VOCdevkit/VOC2012/ImageSets/Main/val.txt").unlink(),
     "no image set 'val' (ImageSets/Main/val.txt; it has: none); pick one with --camaudit-cases-split"),
]


def _dataset(pytester: pytest.Pytester, fault: Callable[[Path], None]) -> None:
    from support.datasets import write_formats

    write_formats(pytester.path, DATA_SEEDS)
    fault(pytester.path)
    pytester.makeini("[pytest]\ncamaudit_device = cpu\n")
    pytester.makepyfile(test_matrix="def test_plain():\n    pass\n")


@pytest.mark.parametrize(("dataset", "fault", "broken", "says"), [r[1:] for r in DATA_ROWS], ids=[r[0] for r in DATA_ROWS])
def test_a_broken_dataset_entry_errors_alone_with_file_and_line(pytester, dataset, fault, broken, says):
    _dataset(pytester, fault)
    report = pytester.path / "report.html"
    result = pytester.runpytest("-p", "no:cacheprovider", "test_matrix.py", f"--camaudit-cases={dataset}", f"--camaudit-report={report}")
    outcomes = {r.nodeid.split("::")[-1]: (r.outcome if r.when == "call" else "error")
                for r in result.reprec.getreports("pytest_runtest_logreport") if r.when == "call" or r.failed}
    folder = broken.rpartition("/")[0] + "/" if "/" in broken else ""  # images listed in a .txt are named below the dataset root
    good = {f"image[{folder}scene-{s}.png]": "passed" for s in DATA_SEEDS if f"scene-{s}.png" != broken}
    assert outcomes == {**good, f"image[{broken}]": "error", "test_plain": "passed"}
    assert says in result.stdout.str(), f"{says!r} not in the output"
    assert says in unescape(report.read_text()), f"{says!r} not on the report"


@pytest.mark.parametrize(("dataset", "fault", "says"), [r[1:] for r in USAGE_ROWS], ids=[r[0] for r in USAGE_ROWS])
def test_a_dataset_that_cannot_be_used_stops_the_run_saying_what_to_fix(pytester, dataset, fault, says):
    _dataset(pytester, fault)
    result = pytester.runpytest("-p", "no:cacheprovider", "test_matrix.py", f"--camaudit-cases={dataset}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert says in result.stderr.str(), result.stderr.str()
