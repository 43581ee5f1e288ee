"""Discovery's tables, as the terminal, the report and the Markdown summary print them (``{title, columns, rows, note}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..records import Table
from .summary import Discovery

if TYPE_CHECKING:
    from .judge import ClassFinding, GroupFinding


def discovery_tables(d: Discovery) -> list[Table]:
    """The per-class discovery table and the atlas-drift table, when there is something to show."""
    return [t for t in (discovery_table(d) if d.enabled else None, drift_table(d)) if t]


def _shown_group(c: ClassFinding) -> GroupFinding | None:
    """The group a class's row shows: its flagged group, else its largest judged one, else its largest."""
    return next((g for g in c.groups if g.status == "flagged"), None) or next(
        (g for g in c.groups if g.status != "too few objects"), None) or (c.groups[0] if c.groups else None)


def discovery_table(d: Discovery) -> Table | None:
    """One row per class: objects, groups, where the shown group's evidence lies, what it loses there, the verdict."""
    if not d.classes:
        return None
    rows = []
    for c in d.classes:
        g = _shown_group(c)
        verdict = "not judged" if d.pending else ("FLAGGED" if c.status == "flagged" else c.status)
        rows.append([c.label, c.objects, sum(1 for x in c.groups if x.status != "too few objects"),
                     f"{g.size} ({g.share:.0%})" if g else "—", g.where if g else "—", g.loss if g else "—",
                     "off" if c.margin is None else c.margin, verdict])
    state = f"{d.pending}; not judged" if d.pending else (f"flagged {', '.join(d.flagged)}" if d.flagged else "nothing flagged")
    return {
        "title": f"camaudit discovery per class ({state})",
        "columns": ["class", "profiled objects", "groups", "group shown", "where its evidence lies", "mean score lost there", "margin", "verdict"],
        "rows": rows,
        "note": "Each audited object re-scored with each region around its box filled (8 ring sectors, farther out, all outside). "
                "A class is flagged when a group of at least 5 objects and 10% of the class loses at least the margin of its score "
                "where its evidence lies. A flag says the detections rest on something beside the object; follow it up with "
                "D-RISE on the class and a forbidden-mass check on that region.",
    }


def drift_table(d: Discovery) -> Table | None:
    """One row per class compared with the baseline's evidence atlas."""
    if not d.drift and not d.drift_note:
        return None
    rows = [[label, v["baseline_n"], v["n"], "—" if v["drift"] is None else v["drift"], "—" if v["tolerance"] is None else v["tolerance"],
             v["verdict"]] for label, v in sorted(d.drift.items())]
    return {
        "title": "camaudit evidence atlas: drift from the baseline",
        "columns": ["class", "baseline objects", "objects", "drift (1 - r)", "tolerance (atlas-drift)", "verdict"],
        "rows": rows,
        "note": "Where each class's maps put their mass around its boxes (box coordinates), against the baseline's. "
                "Judged only with --camaudit-baseline-tolerance 'atlas-drift=X'." + (f" {d.drift_note}" if d.drift_note else ""),
    }
