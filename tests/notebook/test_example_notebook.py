"""``example_suite/explore.ipynb`` runs top to bottom in a real Jupyter kernel (offline, this interpreter) and shows its pictures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

EXAMPLE = Path(__file__).resolve().parents[2] / "example_suite"
NOTEBOOK = EXAMPLE / "explore.ipynb"


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def test_the_committed_notebook_carries_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and not _outputs(nb) and all(c.execution_count is None for c in code), "strip the outputs before committing"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """The name of a kernel that runs this interpreter (``sys.executable``), its kernelspec in a temporary Jupyter
    path; Jupyter's and IPython's own files there too, and no model hub."""
    for name, sub in (("JUPYTER_PATH", "share"), ("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_DATA_DIR", "data"), ("IPYTHONDIR", "ipython")):
        monkeypatch.setenv(name, str(tmp_path / sub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = tmp_path / "share" / "kernels" / "camaudit-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "camaudit test", "language": "python"}))
    assert KernelSpecManager().get_kernel_spec("camaudit-test").argv[0] == sys.executable
    return "camaudit-test"


def test_the_example_notebook_runs_top_to_bottom_and_shows_its_pictures(kernel):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name=kernel, timeout=300, resources={"metadata": {"path": str(EXAMPLE)}}).execute()
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.output_type == "error"]
    shown = [o.data for o in outputs if o.output_type in ("execute_result", "display_data")]
    assert sum("image/png" in d for d in shown) >= 4  # the clean case, its map, the twin, the twin after the context check
    assert any('class="camaudit-case"' in d.get("text/html", "") and "data:image/png;base64," in d["text/html"] for d in shown)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "shapes-shortcut: expected triangle" in text and "to survive without context" in text
    assert "def test_scene_20000009(camaudit):" in text and "case.assert_survives_without_context(" in text
    assert "released" in shown[-1]["text/html"]
