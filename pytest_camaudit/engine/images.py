"""Turn whatever a user passes as an image into ``uint8 [H, W, 3]`` RGB, or say clearly why not.

Accepted: a file path (PNG, JPEG, … anything Pillow reads), a ``PIL.Image``, a numpy array
(``[H, W]``, ``[H, W, 1|3|4]``; ``uint8``, ``uint16`` or float in ``[0, 1]``), or a torch tensor
``[3, H, W]`` / ``[1, H, W]`` float in ``[0, 1]``.

Files are decoded fully (a truncated file is an error, not a grey stripe), EXIF orientation is
applied so that boxes refer to the image as displayed, and palette / grayscale / CMYK / RGBA /
16-bit images are converted to 8-bit RGB (alpha is composited over white).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ImageInputError
from ..fileio import open_image

MAX_PIXELS = 80_000_000
"""Refuse images above this many pixels (a decompression bomb, or a mistake)."""


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for a detector.

    Attributes:
        pixels: ``uint8 [H, W, 3]`` RGB, C-contiguous.
        source: the file path, or a description such as ``"numpy array"``.
        key: content hash (``sha1`` of shape + bytes), the engine's cache key.
        notes: conversions applied (``"EXIF orientation 6 applied"``, ``"RGBA composited on white"``…).
    """

    pixels: np.ndarray
    source: str
    key: str
    notes: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def content_key(pixels: np.ndarray) -> str:
    """``sha1`` over shape and bytes of a ``uint8 [H, W, 3]`` array."""
    h = hashlib.sha1(repr(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


def _from_pil(img: Any, notes: list[str]) -> np.ndarray:
    from PIL import Image, ImageOps

    orientation = img.getexif().get(0x0112, 1) if hasattr(img, "getexif") else 1
    if orientation not in (None, 1):
        img = ImageOps.exif_transpose(img)
        notes.append(f"EXIF orientation {orientation} applied")
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        notes.append(f"{mode} image scaled to 8 bits")
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        return _from_array(arr, notes)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
        notes.append(f"{mode} with alpha composited on white")
    elif mode != "RGB":
        notes.append(f"{mode} converted to RGB")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _from_array(arr: np.ndarray, notes: list[str]) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[2] not in (1, 3, 4):
        raise ImageInputError(
            f"expected an image array of shape [H, W, 3] (channels last), got {list(arr.shape)}; "
            "transpose it with arr.transpose(1, 2, 0)"
        )
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ImageInputError(f"expected an image array of shape [H, W], [H, W, 3] or [H, W, 4], got {list(arr.shape)}")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = (arr.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
        notes.append("16-bit array scaled to 8 bits")
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageInputError("the image array contains NaN or infinite values")
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            raise ImageInputError(
                f"a float image must hold values in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                "divide by 255 or pass uint8"
            )
        out = (arr * 255.0 + 0.5).astype(np.uint8)
    else:
        raise ImageInputError(f"unsupported image dtype {arr.dtype}; pass uint8, uint16 or float in [0, 1]")
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    elif out.shape[2] == 4:
        alpha = out[..., 3:4].astype(np.float32) / 255.0
        out = (out[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
        notes.append("RGBA composited on white")
    return out


def _read_file(path: Path, notes: list[str]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ImageInputError(f"image file {path} does not exist; check the path (relative paths resolve from {Path.cwd()})")
    if not path.is_file():
        raise ImageInputError(f"image path {path} is not a file (a folder?); pass the path of an image file")
    try:
        with warnings.catch_warnings():
            # the pixel limit below is stricter than Pillow's bomb warning, and says what to do
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = open_image(path)  # not Image.open: another library may have replaced it
        with opened as img:
            if img.width * img.height > MAX_PIXELS:
                raise ImageInputError(
                    f"image file {path} is {img.width}x{img.height} = {img.width * img.height} pixels, above the "
                    f"limit of {MAX_PIXELS}; downscale it first"
                )
            img.load()
            return _from_pil(img, notes)
    except ImageInputError:
        raise
    except UnidentifiedImageError:
        raise ImageInputError(f"image file {path} is not an image Pillow can read (corrupt, or not an image); replace it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(f"image file {path} is corrupt or truncated ({exc}); re-export or replace it") from None
    except Image.DecompressionBombError as exc:
        raise ImageInputError(f"image file {path} is too large to decode safely ({exc}); downscale it first") from None


def load_image(src: Any, name: str | None = None) -> LoadedImage:
    """Load ``src`` as ``uint8 [H, W, 3]`` RGB.

    Args:
        src: path (``str`` / ``os.PathLike``), ``PIL.Image.Image``, ``numpy.ndarray`` or
            ``torch.Tensor`` (see the module docstring for accepted shapes).
        name: how to call it in messages when it is not a file.

    Raises:
        ImageInputError: saying what is wrong with the input and what to do.
    """
    notes: list[str] = []
    if isinstance(src, (str, Path)) or hasattr(src, "__fspath__"):
        path = Path(src)
        pixels = _read_file(path, notes)
        source = str(path)
    elif type(src).__module__.startswith("PIL."):
        pixels = _from_pil(src, notes)
        source = name or "PIL image"
    elif isinstance(src, np.ndarray):
        pixels = _from_array(src, notes)
        source = name or "numpy array"
    elif type(src).__module__.startswith("torch"):
        t = src.detach().cpu()
        if t.ndim != 3 or t.shape[0] not in (1, 3):
            raise ImageInputError(f"expected an image tensor of shape [3, H, W] or [1, H, W], got {list(t.shape)}")
        pixels = _from_array(t.permute(1, 2, 0).float().numpy(), notes)
        source = name or "torch tensor"
    else:
        raise ImageInputError(
            f"cannot use a {type(src).__name__} as an image; pass a file path, a PIL image, "
            "a uint8 numpy array [H, W, 3] or a float tensor [3, H, W]"
        )
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ImageInputError(f"image {source} is empty ({pixels.shape[1]}x{pixels.shape[0]} pixels)")
    pixels = np.ascontiguousarray(pixels)
    return LoadedImage(pixels, source, content_key(pixels), tuple(notes))
