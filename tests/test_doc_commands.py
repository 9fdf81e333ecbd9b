"""Every shell command in the README and the docs runs as written.

Commands are the lines of ```bash / ```sh blocks. Each runs in a scratch folder that looks like a
checkout (``configs/``, ``Makefile`` and the ``notebooks`` linked; ``results/`` and ``reports/``
copied, so the repository is never written), with ``./data`` / ``DATA_ROOT`` pointing at a writable
copy of ``../shared/data``. Commands that would take minutes run with the small sizes listed in
:data:`SHRINK` (the same command with fewer points or epochs); commands that need a GPU, the
network, or are the test suite itself are in :data:`SKIP`, with the reason.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.image_trees import write_tiny_imagenet
from helpers.paths import REPO

# the slow tier: every documented command, run as a process
pytestmark = pytest.mark.slow
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]

#: (regex on the command, reason): not run here
SKIP = [
    (r"^pip install -e \"\.\[dev\]\" && python -m pytest", "the test suite itself (CI runs it through .ci/run)"),
    (r"^python -m pytest", "the test suite itself"),
    (r"^mkdocs serve", "a web server; tests/test_docs.py builds the site"),
    (r"^mkdocs build", "tests/test_docs.py runs it (into a temporary folder)"),
    (r"--download", "needs the network"),
    (r"device=cuda|--device cuda|LocalCUDACluster|dask-cuda", "needs a CUDA GPU"),
    (r"^make reports", "computes every record this machine can: an hour and more"),
    (r"import-benchmark", "needs a benchmark file of the first layout"),
    (r"SLURMCluster|sbatch|srun|--scheduler tcp://|--scheduler ADDRESS|--scheduler \$", "needs a cluster"),
    (r"^python benchmarks/", "a benchmark: minutes; its page is rendered from its record"),
    (r"--dataset (imagefolder|imagenet)\b|--dataset tiny-imagenet (?!--data-root \./tiny\b)",
     "needs image folders: tests/separation/core/test_image_folders.py runs it on folders it writes"),
    (r"^make mutation", "mutation testing: hours on 2 cores (its report is reports/quality/mutation.md)"),
    (r"^dask (scheduler|worker) ", "starts a Dask server that runs until stopped (tests/separation/engines/test_dask_engine.py "
                                   "starts its own cluster)"),
]

#: (regex, replacements [(pattern, repl)], extra arguments): the same command, smaller
SHRINK = [
    (r"separation\.compute .*--engine reference", [(r"--subset \d+", "--subset 300")], []),
    (r"separation\.compute .*--dataset (mnist|fashion-mnist)(?!.*--subset)", [], ["--subset", "3000"]),
    (r"lipschitz_construct\.verify .*--dataset (mnist|fashion-mnist)(?!.*--subset)", [], ["--subset", "1000"]),
    (r"lipschitz_construct\.bounds .*--dataset (mnist|fashion-mnist)(?!.*--subset)", [], ["--subset", "2000"]),
    (r"lipschitz_construct\.verify .*--subset \d{4,}", [(r"--subset \d+", "--subset 1000")], []),
    # a stored bounds record is used only for exactly its points: keep the subset, shrink the attacks
    (r"analysis\.evaluate .*--bounds-from", [], ["--attacks", "pgd", "--pgd-steps", "2", "--lip-steps", "2"]),
    (r"analysis\.evaluate .*--subset", [(r"--subset \d+", "--subset 40")],
     ["--attacks", "pgd", "--pgd-steps", "2", "--lip-steps", "2"]),
    (r"analysis\.evaluate", [], ["--subset", "40", "--attacks", "pgd", "--pgd-steps", "2", "--lip-steps", "2"]),
    (r"analysis\.train (?!.*--print-config)", [],
     ["--epochs", "1", "--train-subset", "256", "--set", "evaluation.subset=32", "--set", "monitor_size=0"]),
    (r"analysis\.grid \S+ (?!.*(--list|--table))", [],
     ["--only", "natural", "--set", "epochs=1", "--set", "train_subset=256", "--set", "evaluation.subset=32",
      "--set", "monitor_size=0"]),
]


def commands() -> list[tuple[str, str]]:
    """``(page:line, command)`` for every command line of every shell block."""
    out, seen = [], set()
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(r"```(?:bash|sh|shell)\n(.*?)```", text, re.S):
            start = text[:m.start()].count("\n") + 2
            lines = m.group(1).splitlines()
            i = 0
            while i < len(lines):
                line, where = lines[i], start + i
                while line.rstrip().endswith("\\") and i + 1 < len(lines):  # continued lines
                    i += 1
                    line = line.rstrip()[:-1] + " " + lines[i].strip()
                i += 1
                cmd = re.sub(r"\s+#.*$", "", line).strip()  # trailing comments
                if cmd and not cmd.startswith("#") and cmd not in seen:  # a command shown twice runs once
                    seen.add(cmd)
                    out.append((f"{page.relative_to(REPO)}:{where}", cmd))
    return out


COMMANDS = commands()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, request):
    """A folder that looks like a checkout to the documented commands."""
    root = tmp_path_factory.mktemp("checkout")
    for name in ("configs", "notebooks", "Makefile", "benchmarks"):
        (root / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "results", root / "results")
    shutil.copytree(REPO / "reports", root / "reports")
    try:
        data = request.getfixturevalue("shared_data_root")
    except pytest.skip.Exception:
        data = None
    if data is not None:
        (root / "data").symlink_to(data)
    rng = np.random.default_rng(0)  # the "my_data.npz" of the examples
    np.savez(root / "my_data.npz", x_train=rng.random((60, 3, 4, 4)), y_train=np.arange(60) % 3,
             x_test=rng.random((20, 3, 4, 4)), y_test=np.arange(20) % 3)
    write_tiny_imagenet(root / "tiny", rng)  # the "./tiny" of the image-collection guide
    _checkpoint(root / "model.pt")
    (root / "checkpoints").mkdir()
    shutil.copy(root / "model.pt", root / "checkpoints" / "cnn001.pt")
    return root, data


def _checkpoint(path: Path) -> None:
    """A small trained-for-nothing cnn001 checkpoint: what `model.pt` stands for in the docs."""
    import torch

    from analysis.checkpoints import save_checkpoint
    from analysis.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn001", in_channels=1, num_classes=10, input_size=28)
    save_checkpoint(path, model=model, config={"arch": "cnn001", "dataset": "mnist", "in_channels": 1,
                                               "num_classes": 10, "input_size": 28})


def prepare(cmd: str, data: Path | None) -> tuple[str, str | None]:
    """The command to run (sizes shrunk, data root substituted), or a reason to skip it."""
    for pattern, reason in SKIP:
        if re.search(pattern, cmd):
            return cmd, reason
    if cmd.startswith("pip install -e . && "):  # the set-up's main job: installing is CI's step
        cmd = cmd[len("pip install -e . && "):]
    needs_data = bool(re.search(r"--dataset (mnist|fashion-mnist)|--data-root|DATA_ROOT|make (render|status)", cmd))
    if needs_data and data is None:
        return cmd, "needs ../shared/data (MNIST / Fashion-MNIST)"
    cmd = cmd.replace("DATA_ROOT", "data").replace("./data", "data").replace("/shared/data", "data")
    for pattern, subs, extra in SHRINK:
        if re.search(pattern, cmd):
            for a, b in subs:
                cmd = re.sub(a, b, cmd)
            cmd += "".join(" " + shlex.quote(e) for e in extra)
            break
    return cmd, None


@pytest.mark.slow
@pytest.mark.parametrize("where, cmd", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_runs(scratch, where, cmd):
    root, data = scratch
    run, reason = prepare(cmd, data)
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHON": sys.executable}
    bash = shutil.which("bash") or "/bin/bash"
    line = run.replace("python ", f"{shlex.quote(sys.executable)} ", 1) if run.startswith("python ") else run
    p = subprocess.run([bash, "-c", line], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{where}: `{run}` exited {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"


def test_every_page_has_been_read_and_commands_were_found():
    assert len(COMMANDS) >= 30
    assert any("separation.compute --dataset digits" in c for _, c in COMMANDS)
