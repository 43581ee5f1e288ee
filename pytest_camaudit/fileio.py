"""Writing files so that a reader never sees half of one (the one atomic writer of the package), and
opening an image file whatever another library did to Pillow (:func:`open_image`).

The HTML report, its side files, the JSON summary, baselines and checkpoints all go through
:func:`atomic_write` (or :func:`atomic_writer` for a writer that streams): a temporary file in the
target's folder, then ``os.replace``. The result is readable like any other file
(``0666 & ~umask``, i.e. 0644 under the usual umask), so a CI cache, a web server or another user
can read a report or a baseline; ``mkstemp`` alone would leave it 0600.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from PIL import Image


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_writer(target: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """``with atomic_writer(path) as fh: fh.write(...)``: ``path`` appears complete or not at all.

    The folder is created. On any error (or Ctrl-C) inside the block the temporary file is removed
    and ``target`` is left as it was.
    """
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(target: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` (bytes, or a function that writes to the open file) to ``target`` atomically.

    Returns:
        ``target`` as a :class:`~pathlib.Path`.
    """
    with atomic_writer(target) as fh:
        if isinstance(data, (bytes, bytearray, memoryview)):
            fh.write(data)
        else:
            data(fh)
    return Path(target)


def pickle_of(path: str | Path) -> bytes:
    """The pickle (``data.pkl``) of a ``torch.save`` zip file, without unpickling it; ``b""`` when the
    file is missing, not a zip or holds none. Tensors live in other members: the pickle stays small."""
    try:
        with zipfile.ZipFile(Path(path).expanduser()) as z:
            return next((z.read(n) for n in z.namelist() if n.endswith("data.pkl")), b"")
    except (OSError, EOFError, zipfile.BadZipFile, KeyError, ValueError):
        return b""


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """``PIL.Image.open(path)``, lazily; a file Pillow cannot identify raises
    ``PIL.UnidentifiedImageError`` (an ``OSError``) even when another library replaced the opener.

    Importing ultralytics replaces ``PIL.Image.open`` with one that, on such a file, imports the
    HEIF plugin ``pi_heif`` and retries: where that is not installed, a corrupt image raised
    ``ModuleNotFoundError: No module named 'pi_heif'`` instead.
    """
    from PIL import Image as PILImage

    try:
        return PILImage.open(path)
    except ImportError:
        raise PILImage.UnidentifiedImageError(f"cannot identify image file {str(path)!r}") from None
