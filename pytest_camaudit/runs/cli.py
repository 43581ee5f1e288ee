"""The command line of ``python -m pytest_camaudit``: ``merge`` the shards of a run.

::

    python -m pytest_camaudit merge shards/*.json --report=report.html [--json=merged.json]
                                    [--markdown=summary.md] [--expect-shards=3]

Prints the same ``camaudit`` tables as a single run. Exit status: 0 when every test and gate
passed, 1 when one failed (or a shard was interrupted, so the gates could not be judged), 2 for a
usage error or a refusal (shards that are not one run, a corrupt or truncated file, fewer shards
than ``--expect-shards``), with a message that says why.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from ..validation import whole_number

if TYPE_CHECKING:
    from .merge import Merged


def _count(value: str) -> int:
    try:
        return whole_number(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _path(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("expected a file path, got an empty string")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pytest_camaudit", description="pytest-camaudit: what is done with a run's record after the run.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    m = sub.add_parser("merge", help="merge the --camaudit-json files of a run's shards into one report, run file and verdict",
                       description="Merge the --camaudit-json files of a run's shards: one report, one run file, the gates judged "
                                   "over every shard. Exit status 0: passed, 1: a test or gate failed, 2: refused.")
    m.add_argument("shards", nargs="+", metavar="SHARD.json", help="the shards' run files (their *_figures/ folders beside them)")
    m.add_argument("--report", type=_path, help="write the merged HTML report here (its pictures in PATH_files/)")
    m.add_argument("--json", type=_path, help="write the merged run file here (its figures in PATH_figures/)")
    m.add_argument("--markdown", type=_path, help="write a Markdown summary here (< 64 KB), e.g. $GITHUB_STEP_SUMMARY")
    m.add_argument("--expect-shards", type=_count, metavar="N", help="refuse to merge fewer than N shards")
    return p


def _print_merged(merged: Merged, out: TextIO) -> None:
    from .tables import gate_failure_lines, terminal_lines

    summary, shards, failures = merged.summary, merged.shards, merged.failures
    print(f"{'-' * 30} camaudit (merged {len(shards)} shards) {'-' * 30}", file=out)
    for s in shards:
        label = s.run.get("shard")
        print(f"shard {s.path}" + (f" (group {label.get('group')} of {label.get('splits')})" if label else ""), file=out)
    for problem in merged.problems:
        print(f"WARNING: {problem}", file=out)
    for text, _ in terminal_lines(summary, [], merged.written.get("report")):
        print(text, file=out)
    if failures:
        print(f"{'=' * 20} camaudit: {len(failures)} dataset gate(s) failed {'=' * 20}", file=out)
        for line in gate_failure_lines(failures):
            print(line, file=out)
    tests, failed = summary["tests"], summary["failed_tests"]
    verdict = "passed" if merged.exit_code == 0 else "FAILED"
    print(f"camaudit merge: {verdict}: {tests} tests ({failed} failed), {len(failures)} gate(s) failed, "
          f"gates {summary['gates']['state']}", file=out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    out = out or sys.stdout
    from .merge import merge
    from .shards import Refusal

    try:
        merged = merge(args.shards, report=args.report, json_path=args.json, markdown=args.markdown, expect_shards=args.expect_shards)
    except Refusal as exc:
        print(f"camaudit merge: refused: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"camaudit merge: could not write the output ({exc}); check that its folder is writable", file=sys.stderr)
        return 2
    _print_merged(merged, out)
    return merged.exit_code
