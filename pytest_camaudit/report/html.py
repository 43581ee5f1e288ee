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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from ..fileio import atomic_writer
from ..records import CaseRecord, FigureRecord, RunSummary, bound
from .files import SIDE_FILE, SideFolder, assets_dir, side_file_name

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("pytest_camaudit.report", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html", "j2"), default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
OUTCOMES = ("failed", "error", "xpassed", "xfailed", "passed", "skipped")
"""The outcome filter's order (not the cards': :class:`~pytest_camaudit.records.Status`)."""
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
    return case.status.value


def _failed_kinds(case: CaseRecord) -> list[str]:
    return sorted({c.kind for c in case.checks if not c.passed})


Sink = Callable[[str, bytes | Path], None]
"""Where a side file goes as soon as a card needs it: ``sink(name, bytes or the path of a file to link)``."""


class _Builder:
    """Hands every side file a card needs to ``sink`` and returns its href (inside ``folder``)."""

    def __init__(self, folder: str, sink: Sink) -> None:
        self.folder = folder
        self.sink = sink

    def add(self, stem: str, data: bytes, ext: str, tag: str = "") -> str:
        name = side_file_name(stem, data, ext, tag)
        self.sink(name, data)
        return f"{quote(self.folder)}/{name}"

    def link(self, name: str, figures: Path | None) -> str:
        """A file the run's figure store already wrote into ``figures`` (content-named like every side file)."""
        if figures is None:
            raise FileNotFoundError(f"figure file {name} is stored on disk but the report was given no figure folder")
        source = figures / name
        if not SIDE_FILE.match(name) or not source.is_file():
            raise FileNotFoundError(f"figure file {source} is missing")
        self.sink(name, source)
        return f"{quote(self.folder)}/{name}"

    def stored(self, f: FigureRecord, figures: Path | None) -> Figure:
        full = self.link(f.file, figures)
        if f.thumb_file:
            return Figure(f.title, f.caption, full, self.link(f.thumb_file, figures), f.width, f.height, f.thumb_width, f.thumb_height)
        assert figures is not None
        thumb, tw, th = _thumb_from((figures / f.file).read_bytes())
        return Figure(f.title, f.caption, full, self.add(f.file.rsplit("-", 1)[0], base64.b64decode(thumb), "jpg", "thumb"),
                      f.width, f.height, tw, th)

    def figure(self, case: CaseRecord, f: FigureRecord, figures: Path | None) -> Figure:
        if f.file:
            return self.stored(f, figures)
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


class CardFacets:
    """The filter choices over the cards to show (outcome, class, failed check) and how many cards
    each matches; counted case by case, so a streaming writer knows them before the first card."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()
        self.classes: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.total = 0

    @classmethod
    def of(cls, cases: Iterable[CaseRecord]) -> CardFacets:
        facets = cls()
        for case in cases:
            facets.add(case)
        return facets

    def add(self, case: CaseRecord) -> None:
        self.total += 1
        self.outcomes[_outcome(case)] += 1
        self.classes.update(case.labels or ["(none)"])
        self.kinds.update(_failed_kinds(case))

    def groups(self) -> list[tuple[str, str, list[Facet], dict[str, str]]]:
        """``(title, radio group, facets, name → ident)`` for outcome, class and failed check."""
        out = []
        for title, group, prefix, counts, order in (("outcome", "fo", "o", self.outcomes, OUTCOMES), ("class", "fk", "k", self.classes, None),
                                                    ("failed check", "fa", "a", self.kinds, None)):
            names = [o for o in order if o in counts] if order is not None else sorted(counts)
            idents = {name: f"{prefix}{i}" for i, name in enumerate(names)}
            out.append((title, group, [Facet(idents[n], n, counts[n]) for n in names], idents))
        return out


def _cards(b: _Builder, cases: Iterable[tuple[CaseRecord, Path | None]], groups: list[Any]) -> Iterator[Card]:
    """One card per case, built (and its side files handed over) only when the page reaches it."""
    i_out, i_cls, i_kind = (g[3] for g in groups)
    for case, figures in cases:
        out = _outcome(case)
        filters = " ".join([i_out[out], *(i_cls[x] for x in case.labels or ["(none)"]), *(i_kind[k] for k in _failed_kinds(case))])
        card = Card(case, out, filters, [])
        for f in case.figures:
            try:
                card.figures.append(b.figure(case, f, figures))
            except Exception as exc:  # noqa: BLE001 - one bad picture must not cost the report
                card.problems.append(f"figure {f.name!r} could not be shown ({type(exc).__name__}: {exc})")
        yield card


def _page(b: _Builder, cases: Iterable[tuple[CaseRecord, Path | None]], summary: RunSummary, facets: CardFacets) -> Iterator[str]:
    groups = facets.groups()
    shown = [(title, group, items) for title, group, items, _ in groups]
    css = _ENV.get_template("report.css.j2").render(facets=shown)
    stylesheet = b.add("report", css.encode("utf-8"), "css")
    discovery = summary.get("discovery") or {}
    views = []
    if discovery.get("enabled"):
        from .discovery import class_views

        views = class_views(discovery, b.add)
    return _ENV.get_template("report.html.j2").generate(
        cards=_cards(b, cases, groups), summary=summary, fmt=_fmt, bound=bound, facets=shown, stylesheet=stylesheet,
        total=facets.total, folder=b.folder, discovery=discovery, discovery_views=views,
    )


def render_report(cases: Sequence[CaseRecord], summary: RunSummary, folder: str = "report_files",
                  figures: Path | None = None) -> RenderedReport:
    """The report's HTML for ``cases`` (those to show) under the run ``summary``, in memory.

    Args:
        cases: the cases to show, in order.
        summary: run facts (see :meth:`pytest_camaudit.plugin.collector.RunCollector.summary`).
        folder: the side folder's name, relative to the HTML file.
        figures: the folder where the run's figures were stored (records that name files).
    """
    files: dict[str, bytes | Path] = {}
    b = _Builder(folder, files.__setitem__)
    html = "".join(_page(b, ((c, figures) for c in cases), summary, CardFacets.of(cases)))
    return RenderedReport(html, folder, files)


def write_report(path: str | Path, cases: Sequence[CaseRecord], summary: RunSummary, figures: Path | None = None) -> Path:
    """Write the report to ``path`` and its side files to ``<stem>_files/`` beside it.

    ``figures`` is where the run's figure store wrote the pictures the records name (the side
    folder itself during a pytest run, so nothing is copied); pictures still inside the records
    are written out here. See :func:`write_report_stream` for the order of writes.
    """
    return write_report_stream(path, ((c, figures) for c in cases), summary, CardFacets.of(cases))


def write_report_stream(path: str | Path, cases: Iterable[tuple[CaseRecord, Path | None]], summary: RunSummary,
                        facets: CardFacets) -> Path:
    """Write the report of ``cases`` (``(case, folder of its figure files)``, in page order) as they come.

    ``facets`` counts the same cases (:meth:`CardFacets.add`), so the filters are known before the
    first card. Memory does not grow with the number of cases: each card is rendered, its side files
    written and the card dropped before the next.

    Order: side files as their cards are rendered, the HTML into a temporary file beside ``path``
    and then moved over it (atomically), then files of an earlier report that this one no longer
    uses are removed. Interrupted at any point, the folder holds either the previous complete
    report or the new one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    side = SideFolder(assets_dir(target))
    b = _Builder(side.folder.name, side.put)
    with atomic_writer(target) as fh:
        for chunk in _page(b, cases, summary, facets):
            fh.write(chunk.encode("utf-8"))
    side.prune()
    return target
