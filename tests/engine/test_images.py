"""load_image: every EXIF orientation, modes and dtypes, and the errors it gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_camaudit.engine.images import load_image
from pytest_camaudit.errors import ImageInputError

T = Image.Transpose
INVERSE = {1: None, 2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE, 6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270}
"""How a camera stores a picture that EXIF orientation N turns back into what is displayed."""


def _display() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(30, 50, 3), dtype=np.uint8)  # not square: a turn changes the shape
    img[2:8, 3:12] = (255, 0, 0)  # a marker near the top-left
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_gives_the_displayed_picture(tmp_path, orientation):
    shown = _display()
    stored = Image.fromarray(shown)
    if INVERSE[orientation] is not None:
        stored = stored.transpose(INVERSE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"  # PNG carries EXIF too, and is lossless
    stored.save(path, exif=exif.tobytes())
    loaded = load_image(path)
    assert np.array_equal(loaded.pixels, shown)
    assert (f"EXIF orientation {orientation} applied" in loaded.notes) == (orientation != 1)


@pytest.mark.parametrize(
    ("array", "note"),
    [
        (np.full((4, 5), 65535, np.uint16), "16-bit array scaled to 8 bits"),
        (np.dstack([np.zeros((4, 5, 3), np.uint8), np.zeros((4, 5), np.uint8)]), "RGBA composited on white"),
        (np.full((4, 5, 1), 1.0), None),
    ],
)
def test_arrays_become_uint8_rgb(array, note):
    loaded = load_image(array, name="arr")
    assert loaded.pixels.shape == (4, 5, 3) and loaded.pixels.dtype == np.uint8
    assert loaded.pixels.max() == 255  # white: full 16-bit, transparent over white, float 1.0
    assert (note in loaded.notes) if note else not loaded.notes


def test_tensor_and_pil_inputs_match_the_array():
    arr = _display()
    from_tensor = load_image(torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0)
    from_pil = load_image(Image.fromarray(arr))
    assert np.array_equal(from_tensor.pixels, arr) and np.array_equal(from_pil.pixels, arr)
    assert from_tensor.key == from_pil.key == load_image(arr).key  # same content, same cache key


def test_palette_with_transparency_is_composited(tmp_path):
    img = Image.new("P", (6, 4), 0)
    img.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    img.putpixel((0, 0), 1)
    img.info["transparency"] = 0
    img.save(tmp_path / "p.png", transparency=0)
    loaded = load_image(tmp_path / "p.png")
    assert tuple(loaded.pixels[0, 0]) == (200, 10, 10) and tuple(loaded.pixels[1, 1]) == (255, 255, 255)
    assert "P with alpha composited on white" in loaded.notes


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ([[1, 2, 3]], "cannot use a list as an image; pass a file path, a PIL image"),
        (np.zeros((0, 4, 3), np.uint8), "is empty (4x0 pixels)"),
        (np.full((3, 3, 3), np.nan), "contains NaN or infinite values"),
        (np.zeros((3, 3, 3), np.int64), "unsupported image dtype int64; pass uint8, uint16 or float in [0, 1]"),
        (np.zeros((5, 6, 2), np.uint8), "expected an image array of shape [H, W], [H, W, 3] or [H, W, 4], got [5, 6, 2]"),
        (torch.zeros(2, 3, 3), "expected an image tensor of shape [3, H, W] or [1, H, W], got [2, 3, 3]"),
    ],
)
def test_unusable_inputs_say_what_is_wrong_and_what_to_pass(src, message):
    with pytest.raises(ImageInputError) as err:
        load_image(src)
    assert message in str(err.value)


@pytest.mark.usefixtures("pillow_open_patched_like_ultralytics")
def test_a_corrupt_file_says_so_when_another_library_patched_pillows_open(tmp_path):
    corrupt = tmp_path / "empty.png"
    corrupt.write_bytes(b"not a png")
    with pytest.raises(ImageInputError, match="empty.png is not an image Pillow can read"):
        load_image(corrupt)
