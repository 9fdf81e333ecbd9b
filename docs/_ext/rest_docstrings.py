"""Griffe extension of the API reference: the toolkit's docstrings as Markdown.

The docstrings are written in plain prose with a few reStructuredText constructs. This extension
rewrites them, before mkdocstrings renders them, so that they read well in Markdown:

* roles -- ``:class:`~separation.ClassIndex```, ``:func:`evaluate```, ``:mod:`.collect``` ... --
  become code spans linked to the object's entry in the reference (relative targets are resolved
  like Sphinx does: against the enclosing class, module and package). A target inside the package
  being rendered that does not exist is a **broken reference**: it is logged as a warning, which
  fails ``mkdocs build --strict``. Targets that exist but are not on a reference page (private
  modules) and targets outside the toolkit (``torch.save``) stay plain code spans;
* ``text::`` literal blocks become fenced code blocks;
* simple tables (``====  ====`` rules) become Markdown tables;
* ``.. math::`` becomes a fenced block holding the formula.

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""
from __future__ import annotations

import re
import textwrap
from html import escape

import griffe

logger = griffe.get_logger(__name__) if hasattr(griffe, "get_logger") else griffe.logger

ROOTS = ("separation", "lipschitz_construct", "analysis")
ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
RULE = re.compile(r"^( *)(=+)((?: +=+)+) *$")
LITERAL = re.compile(r"^(?P<indent> *)(?P<text>.*?)(?P<colons>::)\s*$")


# -- roles ------------------------------------------------------------------------------------------
def _scopes(obj: griffe.Object):
    """The objects a bare target is looked up in: the object (when it has members), its parents up
    to the module, then the packages above the module."""
    o = obj
    while o is not None:
        if o.is_class or o.is_module:
            yield o
        o = o.parent


def _has(obj: griffe.Object, dotted: str) -> bool:
    try:
        obj.get_member(dotted) if hasattr(obj, "get_member") else obj[dotted]
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    return True


def _relative(module: griffe.Module, target: str) -> str:
    dots = len(target) - len(target.lstrip("."))
    base = module.path.split(".")
    if not (module.is_init_module or module.is_package):
        base = base[:-1]
    if dots > 1:
        base = base[: len(base) - (dots - 1)]
    return ".".join([*base, target[dots:]]) if target[dots:] else ".".join(base)


def _resolve(obj: griffe.Object, pkg: griffe.Module, target: str) -> tuple[str | None, bool]:
    """``(absolute path or None, broken)`` of ``target`` referenced from ``obj``'s docstring."""
    if target.startswith("."):
        path = _relative(obj.module, target)
    elif target.split(".")[0] in ROOTS:
        path = target
    else:
        for scope in _scopes(obj):
            if _has(scope, target):
                return f"{scope.path}.{target}", False
        return None, False  # outside the toolkit (torch, numpy, a parameter name ...)
    root, _, rest = path.partition(".")
    if root != pkg.name:
        return path, False  # another package of the toolkit: left to autorefs (optional link)
    return (path, False) if not rest or _has(pkg, rest) else (None, True)


def _roles(obj: griffe.Object, pkg: griffe.Module, text: str, known_broken: frozenset[str] = frozenset()) -> str:
    def link(m: re.Match) -> str:
        tilde, target = m.group(2), m.group(3).strip()
        bare = target[:-2] if target.endswith("()") else target
        shown = bare.lstrip(".").split(".")[-1] if tilde else bare.lstrip(".") or bare
        if target.endswith("()"):
            shown += "()"
        path, broken = _resolve(obj, pkg, bare)
        code = f"<code>{escape(shown)}</code>"
        if broken:
            where = f"{obj.relative_filepath}:{obj.lineno}" if obj.lineno else obj.path
            log = logger.info if bare in known_broken else logger.warning
            log("%s: broken reference %s in the docstring of %s", where, m.group(0), obj.path)
            return code
        if path is None:
            return code
        return f'<autoref identifier="{escape(path)}" optional>{code}</autoref>'

    return ROLE.sub(link, text)


# -- blocks ---------------------------------------------------------------------------------------
def _language(block: list[str]) -> str:
    text = "\n".join(block)
    if re.search(r"^\s*(python3? -m |python3? [\w/]+\.py|make |bash )", text, re.M):
        return "sh"
    if re.search(r"^\s*(from \w|import \w|\w+ = |\w+\(|\{\")", text, re.M):
        return "python"
    if re.search(r"^\s*[\w-]+:( |$)", text, re.M):
        return "yaml"
    return "text"


def _literal_blocks(lines: list[str]) -> list[str]:
    """``text::`` + blank line + indented block -> ``text:`` + a fenced block."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = LITERAL.match(lines[i])
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if not m or j == i + 1 or j >= len(lines):
            out.append(lines[i])
            i += 1
            continue
        indent = len(m.group("indent"))
        block_indent = len(lines[j]) - len(lines[j].lstrip())
        if block_indent <= indent:
            out.append(lines[i])
            i += 1
            continue
        k = j
        while k < len(lines) and (not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) >= block_indent):
            k += 1
        while k > j and not lines[k - 1].strip():
            k -= 1
        block = textwrap.dedent("\n".join(lines[j:k])).splitlines()
        text = m.group("text").rstrip()
        pad = " " * indent
        if text:
            out += [pad + text + ":", ""]
        out += [pad + "```" + _language(block), *[(pad + b).rstrip() for b in block], pad + "```"]
        i = k
    return out


def _cells(line: str, spans: list[tuple[int, int]]) -> list[str]:
    cells = []
    for n, (a, b) in enumerate(spans):
        end = len(line) if n == len(spans) - 1 else spans[n + 1][0]
        cells.append(line[a:end].strip())
    return cells


def _tables(lines: list[str]) -> list[str]:
    """reST simple tables -> Markdown tables (continuation lines, first cell empty, are joined)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = RULE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        rule = lines[i]
        spans = [(s.start(), s.end()) for s in re.finditer(r"=+", rule)]
        j = i + 1
        rows: list[list[str]] = []
        rules_seen = [i]
        while j < len(lines):
            if RULE.match(lines[j]):
                rules_seen.append(j)
                if j + 1 >= len(lines) or not lines[j + 1].strip() or len(rules_seen) == 3:
                    break
            elif lines[j].strip():
                cells = _cells(lines[j], spans)
                if rows and not cells[0]:
                    rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
                else:
                    rows.append(cells)
            j += 1
        header = rows[0] if len(rules_seen) == 3 else [""] * len(spans)
        body = rows[1:] if len(rules_seen) == 3 else rows
        pad = m.group(1)
        out += ["", pad + "| " + " | ".join(header) + " |", pad + "|" + "---|" * len(spans)]
        out += [pad + "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        out.append("")
        i = j + 1
    return out


def _math(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        m = re.match(r"^( *)\.\. math::\s*(.*)$", line)
        if m:
            out += [m.group(1) + "```text", m.group(1) + m.group(2), m.group(1) + "```"]
        else:
            out.append(line)
    return out


def markdown(obj: griffe.Object, pkg: griffe.Module, text: str, known_broken: frozenset[str] = frozenset()) -> str:
    lines = text.splitlines()
    lines = _math(_tables(_literal_blocks(lines)))
    return _roles(obj, pkg, "\n".join(lines), known_broken)


class RestDocstrings(griffe.Extension):
    """Rewrite every docstring of a loaded package (see the module docstring).

    ``known_broken``: role targets, as written in the docstring (e.g. ``.fig_bounds``), whose
    breakage is known and only logged at INFO level until the docstring is fixed.
    """

    def __init__(self, known_broken: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__()
        self.known_broken = frozenset(known_broken)

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        self._walk(pkg, pkg, set())

    # griffe < 2 names the hook differently
    def on_package_loaded(self, *, pkg: griffe.Module, **kwargs) -> None:
        self._walk(pkg, pkg, set())

    def _walk(self, obj: griffe.Object, pkg: griffe.Module, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None and not getattr(obj.docstring, "_rest_done", False):
            obj.docstring.value = markdown(obj, pkg, obj.docstring.value, self.known_broken)
            obj.docstring._rest_done = True
        for member in list(obj.members.values()):
            if member.is_alias:
                continue
            self._walk(member, pkg, seen)
