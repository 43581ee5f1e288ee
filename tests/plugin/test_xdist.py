"""pytest-xdist: every audited case from every worker reaches the report exactly once."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

from pytest_camaudit.zoo.dataset import write_coco_dataset

pytest.importorskip("xdist")

SUITE = '''
import os, pathlib, pytest

pytestmark = pytest.mark.slow  # end-to-end: a real pytest run, a browser or hundreds of cases
IMAGES = sorted(pathlib.Path("data/images").glob("*.png"))

@pytest.fixture(autouse=True)
def _where(request):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    pathlib.Path("workers").mkdir(exist_ok=True)
    (pathlib.Path("workers") / f"{worker}-{request.node.name}").touch()

@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_circle(camaudit, path):
    camaudit.audit(path).assert_detected("circle", score_threshold=0.3)

@pytest.mark.parametrize("path", IMAGES, ids=lambda p: p.name)
def test_mass_fails(camaudit, path):
    case = camaudit.audit(path)
    case.assert_cam_mass([0, 0, 40, 40], at_least=0.99)

def test_two_cases_and_a_broken_one(camaudit):
    for p in IMAGES[:2]:
        camaudit.audit(p, name="pair-" + p.name)
    camaudit.audit("data/images/missing.png")
'''


@pytest.fixture
def suite(pytester):
    write_coco_dataset(pytester.path / "data", list(range(20_000_000, 20_000_006)), "shapes")
    pytester.makepyfile(SUITE)
    return pytester


def _run(suite, *args):
    out = suite.path / f"run{len(args)}"
    result = suite.runpytest("-p", "no:cacheprovider", f"--camaudit-report={out}/r.html", f"--camaudit-json={out}/s.json",
                             f"--junitxml={out}/j.xml", "--camaudit-report-all", *args)
    return result, json.loads((out / "s.json").read_text()), (out / "r.html").read_text()


@pytest.mark.slow
def test_two_workers_report_every_case_exactly_once_with_totals_of_all_workers(one_torch_thread, suite):
    serial, doc1, _ = _run(suite)
    parallel, doc2, html = _run(suite, "-n", "2")
    assert "2 workers" in parallel.stdout.str() or "created: 2/2 workers" in parallel.stdout.str()
    assert {p.name.split("-", 1)[0] for p in (suite.path / "workers").iterdir()} >= {"gw0", "gw1"}
    keys = [(c["nodeid"], c["name"]) for c in doc2["cases"]]
    assert len(keys) == len(set(keys)) == 6 + 6 + 3  # exactly once each
    assert keys == [(c["nodeid"], c["name"]) for c in doc1["cases"]]
    # the same cases, the same numbers, whichever worker ran them
    assert [c["metrics"] for c in doc2["cases"]] == [c["metrics"] for c in doc1["cases"]]
    assert doc2["totals"] == doc1["totals"]
    assert doc2["totals"]["audited_cases"] == 15 and doc2["totals"]["error_cases"] == 1 and doc2["totals"]["tests"] == 13
    assert html.count('<article class="case ') == 15
    assert len(set(re.findall(r'<div class="nodeid">([^<]+)</div>', html))) == 15
    totals = doc2["totals"]
    line = (f"{totals['audited_cases']} audited cases: {totals['failed_cases']} failing, {totals['error_cases']} unusable/error, "
            f"{totals['passed_cases']} passing")
    for result in (serial, parallel):
        result.stdout.fnmatch_lines([f"{line}*"])
    # metrics reach JUnit from the workers too
    props = [p.get("name") for p in ET.parse(suite.path / "run2" / "j.xml").getroot().iter("property")]
    assert sum(n.endswith(".cam_mass.mass") for n in props) == 6 and sum(n.endswith(".verdict") for n in props) == 15


@pytest.mark.slow
def test_each_worker_gets_its_share_of_the_cores(pytester, monkeypatch):
    """torch's default (one thread per core in every worker) oversubscribes the CPU under -n 2."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    pytester.makeini("[pytest]\ncamaudit_device = cpu\n")
    pytester.makepyfile(
        "import os, torch\n"
        "def test_threads(camaudit_cam_engine):\n"
        "    assert torch.get_num_threads() == max(1, len(os.sched_getaffinity(0)) // 2)\n"
    )
    pytester.runpytest("-p", "no:cacheprovider", "-n", "2").assert_outcomes(passed=1)


GATED = '''
import os, pathlib, pytest
pytestmark = [pytest.mark.camaudit_cases("data/annotations.json", gate_mass=(0.99, 0.5)), pytest.mark.slow]

@pytest.fixture(autouse=True)
def _where(request):
    where = pathlib.Path({seen!r})
    where.mkdir(exist_ok=True)
    (where / (os.environ.get("PYTEST_XDIST_WORKER", "main") + "-" + request.node.name)).write_text(os.getcwd())

def test_scene(camaudit, camaudit_entry):
    camaudit_entry.check(camaudit_entry.audit(camaudit))
'''


@pytest.fixture
def socket_gateway(tmp_path):
    """execnet's own socket server on 127.0.0.1, as a remote host of a pool would run it (``socketserver.py :PORT``)."""
    import socket
    import subprocess
    import sys
    import time

    import execnet.script.socketserver as server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "remote-host"
    home.mkdir()
    proc = subprocess.Popen([sys.executable, server.__file__, f"127.0.0.1:{port}"], cwd=home,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # until it listens
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"socket=127.0.0.1:{port}", home
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tx_gateways_popen_and_socket_bring_every_case_once_and_gates_judged_on_all(one_torch_thread, pytester, socket_gateway):
    """``--tx 2*popen`` and a socket gateway (a pool of hosts): the same cases, tables and gates as one process."""
    write_coco_dataset(pytester.path / "data", list(range(20_000_000, 20_000_006)), "shapes")
    pytester.makeini("[pytest]\ncamaudit_device = cpu\ncamaudit_method = eigengradcam\n")
    spec, home = socket_gateway

    def run(name, *args):
        """One run; its workers note where they ran each test in their own folder ``seen-<name>``. Each in its own
        process: execnet shuts a socket gateway's socket down without closing it, and a run in this process would
        leave it to whichever later test's garbage collection finds it (a ResourceWarning there)."""
        pytester.makepyfile(test_gated=GATED.replace("{seen!r}", repr(str(pytester.path.parent / f"seen-{name}"))))
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--camaudit-json={pytester.path / name}.json", *args)
        return result, json.loads((pytester.path / f"{name}.json").read_text())

    def gates(result):
        """The gate table (title, header, rows) and the failed-gate lines."""
        lines, table = [], False
        for line in result.stdout.lines:
            table = line.startswith("camaudit gates:") or (table and line.startswith("  "))
            if table or line.startswith("FAILED gate:"):
                lines.append(line)
        return lines

    one, doc = run("one")
    popen, doc_popen = run("popen", "--tx", "2*popen", "--dist", "load")
    remote, doc_remote = run("remote", "--tx", spec, "--tx", "popen", "--dist", "load", "--rsyncdir", str(pytester.path), str(pytester.path))
    assert one.ret == popen.ret == remote.ret == pytest.ExitCode.TESTS_FAILED
    for result in (popen, remote):
        result.assert_outcomes(passed=5, failed=1)  # scene 20000004 misses two objects
        assert gates(result) == gates(one) and len([g for g in gates(one) if g.startswith("FAILED gate")]) >= 3
    for other in (doc_popen, doc_remote):
        assert [(c["nodeid"], c["name"]) for c in other["cases"]] == [(c["nodeid"], c["name"]) for c in doc["cases"]]  # once each
        assert [c["metrics"] for c in other["cases"]] == [c["metrics"] for c in doc["cases"]]
        assert other["tests"] == doc["tests"] and other["gates"] == doc["gates"] and other["tables"] == doc["tables"]
    ran_at = {name: {p.name: p.read_text() for p in (pytester.path.parent / f"seen-{name}").iterdir()} for name in ("popen", "remote")}
    for notes in ran_at.values():
        assert len(notes) == 6 and {n.split("-", 1)[0] for n in notes} == {"gw0", "gw1"}, notes  # both workers ran tests
    # in the remote run gw0 is the socket host: it ran its tests in its own folder (the rsynced copy), gw1 (popen) in ours
    remote = ran_at["remote"]
    assert {where.startswith(str(home)) for n, where in remote.items() if n.startswith("gw0-")} == {True}, remote
    assert {where.startswith(str(home)) for n, where in remote.items() if n.startswith("gw1-")} == {False}, remote
