"""Class names: a dataset's own, mapped to the detector's, and the check that the detector knows them.

``--camaudit-cases-names`` (ini ``camaudit_cases_names``, marker ``names=``) maps dataset names to
the detector's, pairs separated by commas, semicolons or new lines (names may hold spaces)::

    aeroplane=airplane, tvmonitor=tv, diningtable=dining table, logo=

An empty target (``logo=``) leaves that class out: its regions are not objects to detect, like
COCO crowds and VOC ``difficult`` objects. Nothing here imports numpy or torch: the option is
validated when pytest parses its command line.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping


def name_map(value: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"a=b, c=d"`` (or a mapping) → ``{"a": "b", "c": "d"}``.

    Raises:
        argparse.ArgumentTypeError: a pair without ``=``, an empty dataset name, a name mapped twice.
    """
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = []
        for chunk in re.split(r"[,;\n]", value or ""):
            if chunk.strip():
                key, eq, target = chunk.partition("=")
                if not eq:
                    raise argparse.ArgumentTypeError(
                        f"class names: expected DATASET=DETECTOR pairs such as 'aeroplane=airplane, tvmonitor=tv', got {chunk.strip()!r}")
                pairs.append((key, target))
    out: dict[str, str] = {}
    for key, target in pairs:
        key, target = key.strip(), target.strip()
        if not key:
            raise argparse.ArgumentTypeError(f"class names: a pair maps nothing to {target!r}; write DATASET=DETECTOR")
        if key in out and out[key] != target:
            raise argparse.ArgumentTypeError(f"class names: {key!r} is mapped twice ({out[key]!r} and {target!r})")
        out[key] = target
    return out


def parse_name_map(value: str) -> str:
    """Validate a name map (see :func:`name_map`); the setting keeps the text."""
    name_map(value)
    return str(value).strip()


def unmatched(counts: Iterable[tuple[str, int]], known: Iterable[str]) -> list[tuple[str, int]]:
    """The ``(name, objects)`` of ``counts`` whose name is not in ``known``."""
    have = set(known)
    return [(name, n) for name, n in counts if name not in have]


def unmatched_message(source: str, missing: list[tuple[str, int]], detector: str, known: list[str]) -> str:
    """What a test of a dataset whose class names the detector does not know says (all of them, once)."""
    listed = ", ".join(f"{name!r} ({n} object{'s' if n != 1 else ''})" for name, n in missing)
    shown = ", ".join(known[:40]) + (" …" if len(known) > 40 else "")
    example = ", ".join(f"{name}=…" for name, _ in missing[:3])
    return (f"{source}: {len(missing)} class name{'s' if len(missing) != 1 else ''} of the dataset "
            f"{'are' if len(missing) != 1 else 'is'} not classes of detector {detector}: {listed}. Detector classes: {shown}. "
            f"Map them with --camaudit-cases-names='{example}' (ini camaudit_cases_names, marker names=); "
            "an empty target (name=) leaves a class out")
