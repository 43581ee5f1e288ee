"""Running pytest with a bad option value: a usage error whose message says what is accepted."""

from __future__ import annotations

import pytest


def assert_usage_error(pytester: pytest.Pytester, args: list[str], ini: str, message: str) -> None:
    """Run a one-test project with ``args`` (and ``ini`` lines in ``[pytest]``); the run must stop
    with pytest's usage error and ``message`` (an fnmatch pattern) on stderr."""
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
