"""Render and atomically write the report from plain :class:`~pytest_camaudit.records.CaseRecord` data.

Layout on disk: ``report.html`` plus ``report_files/`` beside it holding the stylesheet, every
card's thumbnail and every full-size picture (see :mod:`pytest_camaudit.report.files`). The page
has no scripts and loads nothing from the network; its Content-Security-Policy allows only those
side files (``'self'``), so it renders under strict policies such as Jenkins' default one. Cards
show thumbnails (lazy-loaded); a click opens the full-size picture. Filtering by class, failed
assertion and outcome is pure CSS (radio buttons), so it works with JavaScript disabled; without
the stylesheet every card is still there, unfiltered.
"""

from __future__ import annotations

import base64
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from ..fileio import atomic_write
from ..records import CaseRecord, FigureRecord, bound
from .files import SIDE_FILE, assets_dir, prune_side_files, side_file_name, write_side_files

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("pytest_camaudit.report", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2"), default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
OUTCOMES = ("failed", "error", "passed", "skipped")
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.3f}"
    return str(value)


@dataclass
class Figure:
    """A figure as the page shows it: hrefs into the side folder."""

    title: str
    caption: str
    full: str
    thumb: str
    width: int
    height: int
    thumb_width: int
    thumb_height: int


@dataclass
class Card:
    """One case card: the record, its outcome, its CSS filter classes and its figures."""

    case: CaseRecord
    outcome: str
    filters: str
    figures: list[Figure]
    problems: list[str] = field(default_factory=list)


@dataclass
class Facet:
    """One filter choice: ``ident`` is index-based (``k3``), never a user string."""

    ident: str
    label: str
    count: int


@dataclass
class RenderedReport:
    """The HTML and the side files it references inside ``folder``: ``name → bytes``, or the path
    of a stored figure file to link."""

    html: str
    folder: str
    files: dict[str, bytes | Path] = field(default_factory=dict)


def _outcome(case: CaseRecord) -> str:
    return "error" if case.error is not None else (case.outcome if case.outcome in OUTCOMES else "error")


def _failed_kinds(case: CaseRecord) -> list[str]:
    return sorted({c.kind for c in case.checks if not c.passed})


class _Builder:
    """Collects side files while cards are built: bytes, or stored figure files to link (``figures``)."""

    def __init__(self, folder: str, figures: Path | None = None) -> None:
        self.folder = folder
        self.figures = figures
        self.files: dict[str, bytes | Path] = {}

    def add(self, stem: str, data: bytes, ext: str, tag: str = "") -> str:
        name = side_file_name(stem, data, ext, tag)
        self.files[name] = data
        return f"{quote(self.folder)}/{name}"

    def link(self, name: str) -> str:
        """A file the run's figure store already wrote (content-named like every side file)."""
        if self.figures is None:
            raise FileNotFoundError(f"figure file {name} is stored on disk but the report was given no figure folder")
        source = self.figures / name
        if not SIDE_FILE.match(name) or not source.is_file():
            raise FileNotFoundError(f"figure file {source} is missing")
        self.files[name] = source
        return f"{quote(self.folder)}/{name}"

    def stored(self, f: FigureRecord) -> Figure:
        full = self.link(f.file)
        if f.thumb_file:
            return Figure(f.title, f.caption, full, self.link(f.thumb_file), f.width, f.height, f.thumb_width, f.thumb_height)
        assert self.figures is not None
        thumb, tw, th = _thumb_from((self.figures / f.file).read_bytes())
        return Figure(f.title, f.caption, full, self.add(f.file.rsplit("-", 1)[0], base64.b64decode(thumb), "jpg", "thumb"),
                      f.width, f.height, tw, th)

    def figure(self, case: CaseRecord, f: FigureRecord) -> Figure:
        if f.file:
            return self.stored(f)
        full = base64.b64decode(f.png)
        stem = f"{case.name}-{f.name}"
        thumb, tw, th = f.thumb, f.thumb_width, f.thumb_height
        if not thumb:  # a record made elsewhere without a preview: make one now
            thumb, tw, th = _thumb_from(full)
        return Figure(
            f.title,
            f.caption,
            self.add(stem, full, _EXT.get(f.mime, "png")),
            self.add(stem, base64.b64decode(thumb), "jpg", "thumb"),
            f.width,
            f.height,
            tw,
            th,
        )


def _thumb_from(data: bytes) -> tuple[str, int, int]:
    import cv2
    import numpy as np

    from .figures import thumbnail

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("the figure's data is not an image OpenCV can decode")
    return thumbnail(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _facets(values: Sequence[Sequence[str]], prefix: str, order: Sequence[str] | None = None) -> tuple[list[Facet], dict[str, str]]:
    counts = Counter(v for vs in values for v in set(vs))
    names = [o for o in order if o in counts] if order is not None else sorted(counts)
    idents = {name: f"{prefix}{i}" for i, name in enumerate(names)}
    return [Facet(idents[n], n, counts[n]) for n in names], idents


def render_report(cases: Sequence[CaseRecord], summary: Mapping[str, Any], folder: str = "report_files",
                  figures: Path | None = None) -> RenderedReport:
    """The report's HTML for ``cases`` (those to show) under the run ``summary``.

    Args:
        cases: the cases to show, in order.
        summary: run facts (see :meth:`pytest_camaudit.plugin.collector.RunCollector.summary`).
        folder: the side folder's name, relative to the HTML file.
        figures: the folder where the run's figures were stored (records that name files).
    """
    b = _Builder(folder, figures)
    outcomes = [[_outcome(c)] for c in cases]
    labels = [c.labels or ["(none)"] for c in cases]
    kinds = [_failed_kinds(c) for c in cases]
    f_out, i_out = _facets(outcomes, "o", OUTCOMES)
    f_cls, i_cls = _facets(labels, "k")
    f_kind, i_kind = _facets(kinds, "a")
    cards = []
    for case, out, labs, ks in zip(cases, outcomes, labels, kinds, strict=True):
        filters = " ".join([i_out[out[0]], *(i_cls[x] for x in labs), *(i_kind[k] for k in ks)])
        card = Card(case, out[0], filters, [])
        for f in case.figures:
            try:
                card.figures.append(b.figure(case, f))
            except Exception as exc:  # noqa: BLE001 - one bad picture must not cost the report
                card.problems.append(f"figure {f.name!r} could not be shown ({type(exc).__name__}: {exc})")
        cards.append(card)
    facets = [("outcome", "fo", f_out), ("class", "fk", f_cls), ("failed check", "fa", f_kind)]
    css = _ENV.get_template("report.css.j2").render(facets=facets)
    stylesheet = b.add("report", css.encode("utf-8"), "css")
    html = _ENV.get_template("report.html.j2").render(
        cards=cards, summary=summary, fmt=_fmt, bound=bound, facets=facets, stylesheet=stylesheet, total=len(cases), folder=folder
    )
    return RenderedReport(html, folder, b.files)


def write_report(path: str | Path, cases: Sequence[CaseRecord], summary: Mapping[str, Any], figures: Path | None = None) -> Path:
    """Write the report to ``path`` and its side files to ``<stem>_files/`` beside it.

    ``figures`` is where the run's figure store wrote the pictures the records name (the side
    folder itself during a pytest run, so nothing is copied); pictures still inside the records
    are written out here.

    Order: side files, then the HTML (atomically: temporary file + ``os.replace``), then files of
    an earlier report that this one no longer uses are removed. Interrupted at any point, the
    folder holds either the previous complete report or the new one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = assets_dir(target)
    rendered = render_report(cases, summary, folder.name, figures)
    write_side_files(folder, rendered.files)
    atomic_write(target, rendered.html.encode("utf-8"))
    prune_side_files(folder, set(rendered.files))
    return target
