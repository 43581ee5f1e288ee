"""The plugin's one ``pytest_runtest_makereport`` wrapper (:mod:`pytest_camaudit.plugin.reports`)."""

from __future__ import annotations

import pytest


def test_the_plugin_wraps_makereport_once_tryfirst(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_impls(request):
            pm = request.config.pluginmanager
            impls = pm.hook.pytest_runtest_makereport.get_hookimpls()
            ours = [i for i in impls if (pm.get_name(i.plugin) or "").startswith("camaudit")]
            assert [pm.get_name(i.plugin) for i in ours] == ["camaudit-reports"]
            assert ours[0].wrapper and ours[0].tryfirst
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
