"""Dataset formats: each reader turns its files into the same :class:`~.base.LabelledSet`.

* :mod:`.coco` — a COCO JSON file (``.json``);
* :mod:`.yolo` (with :mod:`.yolo_config`) — an ultralytics dataset YAML (``.yaml`` / ``.yml``)
  and its label files;
* :mod:`.voc` — a Pascal VOC root (a folder).

A format is recognised from the path alone (:func:`format_of`), never by reading it. Each reader
declares what it reads (:class:`~.base.DatasetFormat`): adding a format is one module and one line
of :data:`FORMATS`. Readers import only the package's plain values and errors (and their parsers,
lazily: PyYAML, defusedxml, pycocotools, Pillow for image headers); nothing above them learns
which format an entry came from.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DatasetError
from . import coco, voc, yolo
from .base import Annotation, DatasetFormat, LabelledImage, LabelledSet

__all__ = ["FORMATS", "Annotation", "DatasetFormat", "LabelledImage", "LabelledSet", "format_of", "read_dataset"]

FORMATS: tuple[DatasetFormat, ...] = (coco.FORMAT, yolo.FORMAT, voc.FORMAT)
"""Every reader, tried in order by :func:`format_of`."""


def format_of(path: str | Path) -> DatasetFormat:
    """The reader of ``path``: by its suffix for a file, a VOC root for a folder.

    Raises:
        DatasetError: no reader takes it (the message names what each one takes).
    """
    p = Path(path)
    for fmt in FORMATS:
        if fmt.matches(p):
            return fmt
    takes = ", ".join(f.what for f in FORMATS)
    raise DatasetError(f"{p}: not a dataset pytest-camaudit reads; expected {takes}")


def read_dataset(path: str | Path, split: str = "val", images_dir: str | Path | None = None) -> LabelledSet:
    """Read ``path`` with its format's reader (``split``: the YAML split or VOC image set; ``images_dir``: COCO only).

    Raises:
        DatasetError: the path is no format's, ``images_dir`` is given for a format that names its own images, or
            a YAML / VOC root cannot be used at all (a COCO file's problems become its entries').
    """
    p = Path(path)
    fmt = format_of(p)
    if images_dir is not None and fmt.name != "coco":
        raise DatasetError(f"{p}: an images folder (--camaudit-cases-images, images=) applies to COCO files only; "
                           f"{fmt.what} names its own images")
    return fmt.read(p, split, Path(images_dir) if images_dir is not None else None)
