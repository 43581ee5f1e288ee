"""Method names: the registry, the option validator and the fixture agree, and bad names say what is valid."""

from __future__ import annotations

import argparse

import pytest

from pytest_camaudit.methods import canonical_name, drise_method, get_method, method_names, register
from pytest_camaudit.plugin.options import parse_method

ISSUE_METHODS = {"eigencam", "eigengradcam", "gradcam", "gradcam++", "hirescam", "xgradcam", "layercam", "ablationcam", "drise", "attention"}


def test_option_names_are_the_registry_names():
    assert set(method_names()) == ISSUE_METHODS
    assert all(parse_method(name) == name for name in method_names())  # the option reads the registry


@pytest.mark.parametrize(
    "spelling, name",
    [("GradCAM++", "gradcam++"), ("Grad-CAM", "gradcam"), ("HiResCAM", "hirescam"), ("X_GradCAM", "xgradcam"),
     ("Layer-CAM", "layercam"), ("AblationCAM", "ablationcam"), ("D-RISE", "drise"), ("EigenGrad-CAM", "eigengradcam"), ("Grad CAM++", "gradcam++")],
)
def test_spellings_fold_onto_registry_names(spelling, name):
    assert parse_method(spelling) == name
    assert get_method(spelling).name == canonical_name(spelling) == name


def test_a_wrong_name_lists_the_valid_ones():
    with pytest.raises(argparse.ArgumentTypeError) as opt:
        parse_method("scorecam")
    with pytest.raises(ValueError) as reg:
        get_method("scorecam")
    for exc in (opt.value, reg.value):
        assert "unknown CAM method 'scorecam'" in str(exc)
        for name in ISSUE_METHODS:
            assert name in str(exc)


def test_registering_a_variant_replaces_the_default_under_its_name():
    default = get_method("drise")
    names = method_names()
    try:
        register(drise_method(masks=64, cells=8))
        assert "64 random masks" in get_method("drise").summary
        assert method_names() == names  # same names, same order
    finally:
        register(default)
    assert get_method("drise") is default


FIXTURE_TEST = """
import pytest
from pytest_camaudit.zoo.world import make_layout, render

def test_box_maps(camaudit):
    case = camaudit.audit(render(make_layout(20_000_003)), name="scene")
    det = case.assert_detected("star")
    mass = case.assert_cam_mass(det, at_least=0.3)
    print("METHOD", camaudit.engine.method, "MASS", round(mass, 2))
"""


@pytest.mark.parametrize("method", ["GradCAM++", "ablationcam", "layercam"])
def test_the_option_and_the_fixture_run_a_per_box_method(pytester, method):
    pytester.makepyfile(FIXTURE_TEST)
    result = pytester.runpytest("-s", "--camaudit-device=cpu", f"--camaudit-method={method}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*METHOD {canonical_name(method)} MASS *"])


def test_a_wrong_method_option_is_a_usage_error_listing_the_methods(pytester):
    pytester.makepyfile("def test_x(camaudit):\n    pass\n")
    result = pytester.runpytest("--camaudit-method=gradcam+++")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown CAM method 'gradcam+++'; expected one of eigencam, eigengradcam, gradcam, gradcam++*drise*"])
