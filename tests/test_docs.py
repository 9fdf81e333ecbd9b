"""The documentation: the mkdocs site builds with --strict (every page in the nav, every link and
API reference resolves, no docstring warning), and the README stays a short entry page."""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import pytest

from helpers.paths import REPO
README = REPO / "README.md"

#: The README's "Set-up: two commands"; the second is what CI runs (.ci/run).
SETUP_COMMANDS = (
    'pip install -e . && python -m separation.compute --dataset digits --norm linf --force',
    'pip install -e ".[dev]" && python -m pytest',
)


@pytest.mark.timeout(600)
def test_mkdocs_build_is_strict_clean(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e \".[dev]\")")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{output}"
    assert not re.search(r"^WARNING", output, re.M), output
    # the API reference was generated from the docstrings, with cross-references resolved
    page = (site / "reference" / "separation.class_index" / "index.html").read_text()
    assert 'id="separation.class_index.ClassIndex"' in page
    losses = (site / "reference" / "analysis.losses" / "index.html").read_text()
    assert 'href="../separation.core.threat/#separation.core.threat.ThreatModel"' in losses
    assert (site / "guide" / "records" / "index.html").is_file()


def test_readme_is_a_short_entry_page():
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; keep it an entry page (<= 200)"
    for command in SETUP_COMMANDS:
        assert command in text, f"README.md lost the set-up command {command!r}"
    # links: the generated reports (where the numbers are) and the guides
    assert "](reports/README.md)" in text
    assert "](docs/index.md)" in text or "](docs/)" in text
    for target in re.findall(r"\]\(((?:docs|reports)/[^)#\s]*)", text):
        assert (REPO / target).exists(), f"README.md links to {target}, which does not exist"


def test_readme_copies_no_measured_table():
    """Measured numbers live in the generated reports/ pages; the README links to them."""
    rows = [ln for ln in README.read_text().splitlines() if ln.lstrip().startswith("|")]
    measured = [ln for ln in rows if re.search(r"\d\.\d", ln)]
    assert measured == [], f"README.md copies measured numbers; link to reports/ instead: {measured}"


def test_ci_runs_the_readmes_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    normalised = ci.replace("python3", "python").replace(" -q", "")
    assert SETUP_COMMANDS[1] in normalised, ".ci/run no longer runs the README's second set-up command"


def test_the_radii_table_of_the_separation_guide_is_the_registry():
    """docs/guide/separation.md lists every default radius of ``separation.core.paper.RADII`` with
    its source, and nothing else: a radius changed in code and not in the guide fails here."""
    from separation.core.paper import RADII

    text = (REPO / "docs" / "guide" / "separation.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([\w-]+)` \| (\w+) \| ([\d.]+) \| (.+) \|$", text, flags=re.M)
    documented = {(ds, norm): (float(eps), source) for ds, norm, eps, source in rows}
    registry = {(ds, norm): (r.eps, r.source) for ds, by in RADII.items() for norm, r in by.items()}
    assert documented == registry
