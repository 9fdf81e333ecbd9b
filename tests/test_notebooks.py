"""The example notebooks run as they are (nbclient, a fresh kernel): on the embedded digits, and
on an MNIST subset when ``../shared/data`` is present. Their outputs are stripped in git."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.paths import REPO

# the slow tier: the notebooks, executed
pytestmark = pytest.mark.slow

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_and_their_outputs_are_stripped():
    assert [p.name for p in NOTEBOOKS] == ["01_separation.ipynb", "02_theorem.ipynb", "03_your_model.ipynb"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code), path.name


def run_notebook(path: Path, workdir: Path, env: dict[str, str]) -> None:
    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment
    try:
        client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                         resources={"metadata": {"path": str(workdir)}})
        client.execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.output_type == "stream")
    assert "IProgress not found" not in text
    # the toolkit's own warnings (e.g. a model left in train mode) do not show in its own notebooks
    assert "UserWarning" not in text and "train mode" not in text, text[:2000]
    if path.name == "03_your_model.ipynb":  # the models side by side: one row per model and split
        html = "".join(str(o.get("data", {}).get("text/plain", "")) for o in nb.cells[-1].outputs)
        assert "my-mlp" in html and "constructed" in html, html[:2000]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_digits(path, tmp_path):
    run_notebook(path, tmp_path, {"NOTEBOOK_DATA_ROOT": "", "MPLBACKEND": "Agg"})


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_an_mnist_subset(path, tmp_path, shared_data_root):
    run_notebook(path, tmp_path, {"NOTEBOOK_DATA_ROOT": str(shared_data_root), "MPLBACKEND": "Agg"})
