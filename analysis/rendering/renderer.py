"""Everything ``python -m analysis.report`` renders -- the paper's tables and figures, the benchmark
pages and ``reports/README.md`` -- from stored records only (the library of that command).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from separation.core.cli import run_command, setup_logging
from separation.core.errors import UsageError
from separation.core.paper import TABLE1_NORMS
from separation.core.records import Record

from . import fig_achieved, fig_bounds, fig_histograms, fig_lipschitz, fig_pairs
from .collect import (DEFAULT_GRID_FILES, Missing, ReportRecords, expected_missing, load_report_records,
                                write_artefact)
from .fig_base import FigureSkipped
from .page_benchmarks import benchmark_page
from .readme import build_readme
from .readme_why import why_section
from .rows import construct_row, evaluate_row, training_row
from .table_achieved import achieved_table, curve_records
from .table_bounds import bounds_table
from .table_dropout import dropout_table
from .table_methods import methods_table, uniquify_labels
from .table_separation import select_separation, separation_table
from .writers import Table, write_table

log = logging.getLogger("analysis.report")

SKIPPED_KEY = "_skipped"  # sources.json: the figures skipped by the last rendering of the figures
TABLES = ("separation", "methods", "dropout", "bounds", "achieved")
#: Tables that ``all`` renders only when a record for them exists (no error line otherwise).
OPTIONAL_TABLES = ("achieved",)
#: The record kinds behind each table (for the missing-record messages).
TABLE_KINDS = {"separation": ["separation"], "methods": ["training", "construct", "evaluate"], "dropout": ["training"],
               "bounds": ["bounds"], "achieved": ["evaluate"]}
COMMANDS = ("all", *TABLES, "figures", "benchmarks", "readme", "status")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Render the paper's tables (Markdown, CSV, LaTeX) and figures (PNG, PDF) from stored "
                    "result records only; missing records are reported with the command that makes them.",
        add_help=add_help)
    p.add_argument("command", nargs="?", default="all", choices=COMMANDS,
                   help="what to render (default: all)")
    p.add_argument("--results", type=Path, default=Path("results"),
                   help="results root holding separation/, construct/, evaluate/, training/, bounds/ (default results)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports)")
    p.add_argument("--data-root", default=None,
                   help="data folder for the image grids (torchvision layout); without the data those "
                        "figures are skipped with a message")
    p.add_argument("--grid", dest="grids", action="append", default=None, metavar="FILE",
                   help=f"grid file whose runs are expected (repeatable; default {', '.join(DEFAULT_GRID_FILES)})")
    p.add_argument("--pairs", type=int, default=8, help="image pairs per row of the image grids (default 8)")
    p.add_argument("--no-images", action="store_true", help="skip the image grids (they load the datasets)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when any expected record is missing or a figure was skipped")
    p.add_argument("--verbose", "-v", action="store_true")
    return p


class Report:
    """Everything one invocation renders, sharing one scan of the records."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.records: ReportRecords = load_report_records(args.results)
        grids = args.grids if args.grids is not None else list(DEFAULT_GRID_FILES)
        # two versions of the missing list: concrete commands for the terminal, the DATA_ROOT
        # placeholder for the committed files (no machine-specific paths in reports/)
        self.missing: list[Missing] = expected_missing(self.records, grid_files=grids)
        self.missing_here: list[Missing] = (
            expected_missing(self.records, grid_files=grids, data_root=args.data_root)
            if args.data_root else self.missing)
        self.written: list[Path] = []
        self.skipped: list[str] = []
        self.sources: dict[str, list[dict[str, Any]]] = {}
        self._tables: dict[str, Table] = {}
        self.figures_rendered = False

    # -- tables ---------------------------------------------------------------------------------
    def _missing(self, kinds: Sequence[str], *, here: bool = False) -> list[Missing]:
        src = self.missing_here if here else self.missing
        return [m for m in src if m.local and m.kind in kinds]

    def table(self, name: str) -> Table:
        if name not in self._tables:
            r = self.records
            if name == "separation":
                t = separation_table(r.separation, missing=self._missing(["separation"]))
            elif name == "methods":
                t = methods_table(r.training, r.construct, r.evaluate,
                                  missing=self._missing(["training", "construct", "evaluate"]))
            elif name == "bounds":
                t = bounds_table(r.bounds, separation=r.separation, missing=self._missing(["bounds"]))
            elif name == "achieved":
                t = achieved_table(r.evaluate)
            else:
                t = dropout_table(r.training, missing=self._missing(["training"]))
            self._tables[name] = t
        return self._tables[name]

    def render_table(self, name: str) -> bool:
        t = self.table(name)
        if t.empty:
            cmds = self._missing(TABLE_KINDS[name], here=True)
            what = {"separation": "separation records", "methods": "training, construct or evaluate records",
                    "dropout": "pairs of training runs with and without dropout", "bounds": "bounds records",
                    "achieved": "evaluation records with a robust-accuracy curve (python -m analysis.evaluate "
                                "--eps E1 E2 ... --bounds)"}[name]
            msg = f"{t.title}: no {what} under {self.args.results}/; nothing written."
            if cmds:
                msg += " Produce them with:\n" + "\n".join(f"    {m.command}" for m in cmds)
            elif name == "dropout" and self.records.training:
                msg += " (the stored training runs have no partner with/without dropout)"
            log.error("%s", msg)
            return False
        self.written += write_table(t, self.args.out / "tables")
        self._source(f"tables/{t.key}", [self._find(label) for label in t.sources])
        return True

    def _find(self, label: str) -> Record | None:
        return next((r for r in self.records.all.records if r.label == label), None)

    def _source(self, artefact: str, recs: Sequence[Record | None]) -> None:
        self.sources[artefact] = [{"record": r.label, "kind": r.KIND, "key": r.key,
                                   "created": r.meta.created if r.meta else None} for r in recs if r is not None]

    # -- figures --------------------------------------------------------------------------------
    def _skip(self, what: str, why: str) -> None:
        self.skipped.append(f"{what}: {why}")
        log.warning("skipped %s: %s", what, why)

    def render_figures(self) -> bool:
        self.figures_rendered = True
        out = self.args.out / "figures"
        shown, _ = select_separation(self.records.separation)
        drawn = 0
        for norm in TABLE1_NORMS:
            recs = [r for r in shown if r.config.norm == norm]
            if not recs:
                self._skip(f"separation histograms ({norm})", "no separation record for this norm"
                           + "".join(f"; {m.command}" for m in self._missing(["separation"])
                                     if f"--norm {norm}" in m.command))
                continue
            try:
                self.written += fig_histograms.separation_histograms(recs, out, norm=norm)
                self._source(f"figures/separation_hist_{norm}", recs)
                drawn += 1
            except FigureSkipped as exc:
                self._skip(f"separation histograms ({norm})", str(exc))
        rows = self.model_rows()
        try:
            self.written += fig_lipschitz.lipschitz_vs_adversarial(rows, out, self.certified_rows())
            self._source("figures/lipschitz_vs_adversarial", list(self.records.training) + list(self.records.evaluate)
                         + list(self.records.construct))
            drawn += 1
        except FigureSkipped as exc:
            self._skip("Lipschitz vs adversarial accuracy figure",
                       f"{exc}; " + "; ".join(m.command for m in self._missing(["training"])))
        if self.records.bounds:
            try:
                self.written += fig_bounds.robustness_bounds_figure(self.records.bounds, rows, out)
                self._source(f"figures/{fig_bounds.STEM}", list(self.records.bounds) + list(self.records.training))
                drawn += 1
            except FigureSkipped as exc:
                self._skip("robustness-bounds figure", str(exc))
        curves = curve_records(self.records.evaluate)
        if curves:
            try:
                self.written += fig_achieved.achieved_vs_achievable_figure(curves, out)
                self._source(f"figures/{fig_achieved.STEM}", curves)
                drawn += 1
            except FigureSkipped as exc:
                self._skip("achieved-vs-achievable figure", str(exc))
        if self.args.no_images:
            self._skip("image grids of the closest pairs", "--no-images")
        else:
            cache: dict[tuple, Any] = {}
            for rec in shown:
                key = (rec.config.data.dataset, rec.config.data.subset, rec.config.data.seed, rec.config.data.fingerprint)
                artefact = f"figures/{fig_pairs.pairs_stem(rec)}"
                try:
                    if key not in cache:
                        try:
                            cache[key] = fig_pairs.load_record_dataset(rec, self.args.data_root)
                        except FigureSkipped as exc:
                            cache[key] = exc
                    if isinstance(cache[key], Exception):
                        raise cache[key]
                    self.written += fig_pairs.closest_pairs_grid(rec, cache[key], out, k=self.args.pairs)
                    self._source(artefact, [rec])
                    drawn += 1
                except FigureSkipped as exc:
                    if not self._keep_previous(artefact, rec, str(exc)):
                        self._skip(f"closest-pairs image grid for {rec.label}", str(exc))
        return drawn > 0

    def _keep_previous(self, artefact: str, rec: Record, why: str) -> bool:
        """Keep a figure rendered earlier from the very same record (same key and creation time)
        when it cannot be redrawn now (e.g. the data is absent); True if kept."""
        prev = self._stored_sources().get(artefact)
        out = self.args.out
        if (isinstance(prev, list) and len(prev) == 1 and prev[0].get("record") == rec.label
                and prev[0].get("created") == (rec.meta.created if rec.meta else None)
                and all((out / f"{artefact}.{ext}").is_file() for ext in ("png", "pdf"))):
            self.sources[artefact] = prev
            log.info("kept %s.png/.pdf, rendered earlier from the same record (%s)", out / artefact, why)
            return True
        return False

    # -- benchmark pages ------------------------------------------------------------------------
    def render_benchmarks(self) -> bool:
        for rec in self.records.benchmark:
            artefact = f"benchmarks/{rec.config.name}"
            self.written.append(write_artefact(self.args.out / f"{artefact}.md", benchmark_page(rec)))
            self._source(artefact, [rec])
        if not self.records.benchmark:
            log.error("no benchmark records under %s/; run e.g. python benchmarks/separation_engines.py",
                      self.args.results)
        return bool(self.records.benchmark)

    # -- README and sources ---------------------------------------------------------------------
    def model_rows(self) -> list[dict[str, Any]]:
        """Every training run (with and without dropout) and every evaluated model, labelled."""
        rows = [training_row(r) for r in self.records.training] + [evaluate_row(r) for r in self.records.evaluate]
        uniquify_labels(rows)
        return rows

    def certified_rows(self) -> list[dict[str, Any]]:
        return [construct_row(r) for r in self.records.construct]

    def figure_notes(self) -> dict[str, str]:
        """What the records say about the figures, for their captions in the README."""
        return {"lipschitz_vs_adversarial": fig_lipschitz.constructed_note(self.model_rows(), self.certified_rows()),
                "robustness_bounds": fig_bounds.coinciding_note(self.records.bounds)}

    def render_readme(self) -> bool:
        tables = {n: self.table(n) for n in TABLES}
        sources = self.merged_sources()
        figures = sorted(k.split("/", 1)[1] for k in sources if k.startswith("figures/"))
        benchmarks = sorted(k.split("/", 1)[1] for k in sources if k.startswith("benchmarks/"))
        text = build_readme(self.args.out, tables, missing=self.missing, skipped=sources.get(SKIPPED_KEY, []),
                            figures=figures, benchmarks=benchmarks,
                            problems=self.records.problems, results_root=self.args.results.as_posix(),
                            why=why_section(self.records.benchmark, self.records.separation),
                            figure_notes=self.figure_notes())
        self.written.append(write_artefact(self.args.out / "README.md", text))
        log.info("wrote %s", self.args.out / "README.md")
        return True

    def _stored_sources(self) -> dict[str, Any]:
        import json

        path = self.args.out / "sources.json"
        try:
            data = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, ValueError):
            data = {}
        return data if isinstance(data, dict) else {}

    def merged_sources(self) -> dict[str, Any]:
        """sources.json after this invocation: entries of artefacts it did not render are kept;
        when it rendered the figures, the figure entries are replaced as a whole."""
        merged = self._stored_sources()
        if self.figures_rendered:
            merged = {k: v for k, v in merged.items() if not k.startswith("figures/")}
            merged[SKIPPED_KEY] = list(self.skipped)
        merged.update(self.sources)
        return dict(sorted(merged.items()))

    def write_sources(self) -> None:
        import json

        text = json.dumps(self.merged_sources(), indent=2, ensure_ascii=False) + "\n"
        self.written.append(write_artefact(self.args.out / "sources.json", text))

    def status(self) -> int:
        lines = [f"records under {self.args.results}/:"]
        for kind in ("separation", "construct", "evaluate", "training", "bounds", "benchmark"):
            recs = self.records.of(kind)
            lines.append(f"  {kind:<10} {len(recs):>3}" + (": " + ", ".join(r.label for r in recs[:8]) +
                                                          (", ..." if len(recs) > 8 else "") if recs else ""))
        local = [m for m in self.missing_here if m.local]
        remote = [m for m in self.missing_here if not m.local]
        if local:
            lines.append("missing (computable here):")
            lines += [f"  {m.message()}" for m in local]
        else:
            lines.append("missing (computable here): none")
        if remote:
            lines.append(f"not on this machine (need data): {len(remote)} records, e.g. {remote[0].command}")
        for p in self.records.problems:
            lines.append(f"problem: {p}")
        sys.stdout.write("\n".join(lines) + "\n")
        return 1 if local or self.records.problems else 0


def run(args: argparse.Namespace) -> int:
    rep = Report(args)
    if args.command == "status":
        return rep.status()
    cmd = args.command
    rendered = []  # per requested artefact: whether it was rendered from at least one record
    if cmd in ("all", *TABLES):
        rendered += [rep.render_table(name) for name in TABLES if cmd == name or (
            cmd == "all" and (name not in OPTIONAL_TABLES or not rep.table(name).empty))]
    if cmd in ("all", "figures"):
        rendered.append(rep.render_figures())
    if cmd in ("all", "benchmarks"):
        rendered.append(rep.render_benchmarks())
    # one artefact asked for: it must exist; `all` renders what the records allow (your own runs
    # have no benchmark or training records, say) and lists the rest
    ok = any(rendered) if cmd == "all" else all(rendered)
    if cmd in ("all", "readme"):
        rep.render_readme()
    if rep.sources or rep.figures_rendered:
        rep.write_sources()
    for m in (m for m in rep.missing_here if m.local):
        log.warning("%s", m.message())
    for w in sorted(set(rep.written)):
        log.debug("written: %s", w)
    n = len(set(rep.written))
    sys.stdout.write(f"{n} file(s) written under {args.out}/"
                     + (f"; {len(rep.skipped)} artefact(s) skipped" if rep.skipped else "")
                     + (f"; {sum(m.local for m in rep.missing_here)} expected record(s) missing "
                        "(python -m analysis.report status lists them)" if any(m.local for m in rep.missing_here) else "")
                     + "\n")
    if args.strict and (rep.skipped or any(m.local for m in rep.missing_here)):
        return 1
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and render (exit codes: the module docstring of :mod:`analysis.report`)."""
    args = get_args_parser().parse_args(argv)
    setup_logging(args.verbose)
    return run_command(lambda: _checked(args), verbose=args.verbose)


def _checked(args: argparse.Namespace) -> int:
    if args.pairs < 1:
        raise UsageError("--pairs must be at least 1")
    if not args.results.is_dir():
        raise UsageError(f"results folder {args.results} does not exist. Produce records first, e.g. "
                         "python -m separation.compute --dataset digits --norm linf, or run `make reports` "
                         "(computes every record this machine can, then renders).")
    return run(args)


__all__ = ["COMMANDS", "OPTIONAL_TABLES", "Report", "SKIPPED_KEY", "TABLES", "TABLE_KINDS", "get_args_parser", "main",
           "run"]
