"""Security and integrity: escaped user strings, safe side-file names, atomic and complete reports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from support.html import check_html
from support.reportdata import summary_for, synthetic_cases

from pytest_camaudit import fileio
from pytest_camaudit.records import CaseRecord
from pytest_camaudit.report import files as report_files
from pytest_camaudit.report import write_report
from pytest_camaudit.report.files import SIDE_FILE
from pytest_camaudit.zoo.world import make_scene

PAYLOAD = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(2)>'


class _Active(HTMLParser):
    """Collects everything a browser could execute or fetch."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.handlers: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed", "base"):
            self.scripts.append(tag)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}")
            if name in ("src", "href", "action", "formaction", "srcset", "data") and value is not None:
                self.urls.append(value)


def _active(html: str) -> _Active:
    p = _Active()
    p.feed(html)
    p.close()
    return p


EVIL_SUITE = f'''
import numpy as np, pytest
from PIL import Image
EVIL = {PAYLOAD!r}
ATTR = {ATTR!r}

@pytest.mark.parametrize("x", [EVIL, ATTR])
def test_ids(camaudit, x):
    case = camaudit.audit(np.asarray(Image.open("scene.png")), name=ATTR + " named " + EVIL)
    case.assert_detected(EVIL + "cls")

def test_file_name(camaudit):
    camaudit.audit(EVIL + ".png").assert_detected("circle", [0, 0, 5, 5])

def test_missing_file_name(camaudit):
    camaudit.audit("missing" + EVIL + ".png")
'''

EVIL_CONFTEST = f'''
import pytest
from pytest_camaudit import Detector
from pytest_camaudit.zoo.model import load_zoo_detector

@pytest.fixture(scope="session")
def camaudit_detector():
    model, _, _ = load_zoo_detector("shapes")
    names = ["__background__", {PAYLOAD + "cls"!r}, "square", {ATTR!r}, "star"]
    return Detector.wrap(model, names, name="model" + {PAYLOAD!r})
'''


def test_every_user_string_is_escaped_in_report_json_and_junit(pytester):
    scene = make_scene(20_000_000).image
    Image.fromarray(scene).save(pytester.path / "scene.png")
    Image.fromarray(scene).save(pytester.path / f"{PAYLOAD.replace('/', '_')}.png")  # '/' cannot be in a file name
    pytester.makeconftest(EVIL_CONFTEST)
    pytester.makepyfile(EVIL_SUITE.replace("EVIL + \".png\"", "EVIL.replace('/', '_') + \".png\""))
    report, js, junit = (pytester.path / n for n in ("r.html", "s.json", "j.xml"))
    result = pytester.runpytest("-p", "no:cacheprovider", f"--camaudit-report={report}", "--camaudit-report-all",
                                f"--camaudit-json={js}", f"--junitxml={junit}")
    result.assert_outcomes(passed=2, failed=2)
    html = report.read_text()
    check_html(html)
    active = _active(html)
    assert active.scripts == [] and active.handlers == []
    assert all(u.startswith("r_files/") for u in active.urls), [u for u in active.urls if not u.startswith("r_files/")]
    assert "<script" not in html.lower() and "onerror=alert" not in html.replace("onerror=alert(2)&gt;", "")
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # ids, class names, case and file names, messages, model
    for where in ("test_ids[", "named", "cls", "missing", "model"):
        assert where in html
    css = next((pytester.path / "r_files").glob("*.css")).read_text()
    assert "alert" not in css  # the stylesheet names classes by index, never by user strings
    doc = json.loads(js.read_text())
    assert any(PAYLOAD in c["name"] for c in doc["cases"])
    ET.parse(junit)  # well-formed despite the payloads
    assert PAYLOAD + "cls" in junit.read_text().replace("&lt;", "<").replace("&gt;", ">")


NASTY_NAMES = ["../../../../etc/passwd", "..\\..\\windows\\system32", "/abs/path.png", "a/b/c.png", ".hidden", "..",
               "CON", "x\x00y", "é" * 300, "", " ", "report", "-rf", "$(touch pwned)"]


def test_side_file_names_from_case_names_cannot_leave_the_folder(tmp_path):
    base = synthetic_cases(len(NASTY_NAMES))
    cases = [CaseRecord.from_dict(dict(c.to_dict(), name=n)) for c, n in zip(base, NASTY_NAMES, strict=True)]
    out = tmp_path / "deep" / "report.html"
    write_report(out, cases, summary_for(tuple(cases)))
    folder = tmp_path / "deep" / "report_files"
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {Path("deep/report.html")} | {p.relative_to(tmp_path) for p in folder.iterdir()}
    assert not [p for p in folder.iterdir() if p.is_dir()]
    for p in folder.iterdir():
        assert SIDE_FILE.match(p.name) and len(p.name) < 80 and not p.name.startswith(("-", "."))
    assert sum(len(list(folder.glob(f"*.{e}"))) for e in ("jpg", "png", "webp")) == 6 * len(NASTY_NAMES)
    with pytest.raises(ValueError, match="refusing side file name"):
        report_files.write_side_files(folder, {"../escape-0123456789abcdef.png": b""})


def test_interrupted_write_keeps_the_previous_report_whole(tmp_path, monkeypatch):
    cases = synthetic_cases(4)
    report = write_report(tmp_path / "r.html", cases, summary_for(cases))
    before = {p.name: p.read_bytes() for p in [report, *(tmp_path / "r_files").iterdir()]}
    real = os.replace

    def ctrl_c_on_the_html(src, dst):
        if str(dst).endswith(".html"):
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(fileio.os, "replace", ctrl_c_on_the_html)
    with pytest.raises(KeyboardInterrupt):
        write_report(report, cases[:1], summary_for(cases[:1]))
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in [report, *(tmp_path / "r_files").iterdir()]}
    assert {k: v for k, v in after.items() if k in before} == before  # old report and all its pictures intact
    assert not list(tmp_path.rglob("*.tmp"))


INTERRUPTED_SUITE = '''
import pathlib, time, pytest
from pytest_camaudit.zoo.world import make_scene

@pytest.mark.parametrize("i", range(3))
def test_fails(camaudit, i):
    camaudit.audit(make_scene(20_000_000 + i).image, name=f"scene-{i}").assert_detected("circle", [0, 0, 9, 9])

def test_errors(camaudit):
    camaudit.audit(make_scene(20_000_005).image, name="before-the-crash")
    raise RuntimeError("the test itself blew up")

def test_waits_for_ctrl_c(camaudit):
    camaudit.audit(make_scene(20_000_004).image, name="interrupted")
    pathlib.Path("started").touch()
    time.sleep(120)
'''


@pytest.mark.slow
def test_report_is_complete_after_ctrl_c_mid_run_and_a_test_that_errors(tmp_path):
    (tmp_path / "test_long.py").write_text(INTERRUPTED_SUITE)
    report = tmp_path / "out" / "report.html"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    # SIGINT back to its default in the child: a runner started in the background by a
    # non-interactive shell (`cmd &`) ignores SIGINT, the child would inherit that, and Python then
    # never raises KeyboardInterrupt (the run would sleep its 120 s out)
    with subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "test_long.py", f"--camaudit-report={report}"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as proc:
        try:
            deadline = time.monotonic() + 240
            while not (tmp_path / "started").exists():
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "the suite never reached its last test"
                time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 2, out  # pytest's exit code for an interrupted run
    assert "KeyboardInterrupt" in out and f"report: {report}" in out
    html = report.read_text()
    check_html(html)
    assert html.rstrip().endswith("</html>")
    assert "INTERRUPTED" in html
    names = re.findall(r'<span class="badge \w+">\w+</span>([^<]+)</h2>', html)
    assert sorted(names) == ["before-the-crash", "scene-0", "scene-1", "scene-2"]  # every test that finished
    assert "the test itself blew up" in html  # the erroring test's case says why it failed
    for src in re.findall(r'src="([^"]+)"', html):
        assert (report.parent / src).is_file()
    assert not list(report.parent.rglob("*.tmp"))
