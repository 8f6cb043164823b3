"""The layers of clusterjob-core: every module imports only from its own layer and those below.

:data:`LAYERS` is where the order is written down; the "Map of the code" in the
README describes each module and must name the same layer (checked below). The
source files are read with :mod:`ast`, so nothing here imports them. An import
inside a function hides an edge of this graph: it needs a comment, on its line
or the line above, that says why. Imports under ``if TYPE_CHECKING:`` are for
annotations only and never run, so they may point anywhere.
"""

from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "clusterjob-core" / "src" / "clusterjob"
README = REPO / "README.md"

#: The layers, lowest first: a module may import from its own layer and every layer above it here.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "errors, status, hooks",
        ("clusterjob.errors", "clusterjob.status", "clusterjob.hookspecs", "clusterjob.faults"),
    ),
    (
        "time and option helpers",
        (
            "clusterjob.walltime",
            "clusterjob.rendering",
            "clusterjob.commands",
            "clusterjob.backends.output",
            "clusterjob.markers",
        ),
    ),
    ("config", ("clusterjob.config",)),
    (
        "backend interface",
        (
            *(
                f"clusterjob.backends.{name}"
                for name in ("overrides", "variables", "options", "status_query", "tag_lookup")
            ),
            "clusterjob.backends.interface",
            "clusterjob.backends",
            "clusterjob.backends.local",
        ),
    ),
    # utils is the documented clusterjob.utils: its run_cmd and upload_file run through the transport.
    (
        "transport and cache",
        (
            "clusterjob.transport",
            "clusterjob.journal",
            "clusterjob.cache",
            "clusterjob.utils",
            "clusterjob.marker_files",
        ),
    ),
    ("plugins", ("clusterjob.plugins",)),
    (
        "jobs",
        (
            "clusterjob.progress",
            "clusterjob.polling",
            "clusterjob.aio",
            "clusterjob.async_result",
            "clusterjob.submission",
            "clusterjob.jobscript",
            "clusterjob.packing",
            "clusterjob.batch",
        ),
    ),
    (
        "CLI and compatibility shims",
        (
            "clusterjob",
            "clusterjob.cli",
            *(
                f"clusterjob.cli.{name}"
                for name in ("__main__", "backends", "cache_commands", "common", "jobs", "submit")
            ),
            *(f"clusterjob.backends.{name}" for name in ("lpbs", "lsf", "pbs", "pbspro", "sge")),
            "clusterjob.backends.slurm",
        ),
    ),
)

#: Run by file path, without the package (each poll of the local backend starts it): stdlib only.
STANDALONE = ("clusterjob.backends.local_runner",)

LAYER_OF = {module: number for number, (_, modules) in enumerate(LAYERS, 1) for module in modules}


@dataclass(frozen=True)
class Import:
    """One import statement of a module: what it imports, where, and how it runs."""

    module: str
    imported: str
    line: int
    in_function: bool
    annotations_only: bool

    @property
    def where(self) -> str:
        return f"{self.module} (line {self.line})"


def module_files() -> dict[str, Path]:
    """Every module of the ``clusterjob`` package of clusterjob-core, by dotted name."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


MODULES = module_files()


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The modules ``node`` imports: ``from clusterjob import cache`` is ``clusterjob.cache``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    submodules = [f"{base}.{alias.name}" for alias in node.names]
    found = [name for name in submodules if name in MODULES]
    return found if len(found) == len(submodules) else [base, *found]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str) -> Iterator[Import]:
    """The import statements of ``module``, each with whether it sits in a function or TYPE_CHECKING."""
    path = MODULES[module]

    def visit(node: ast.AST, in_function: bool, annotations_only: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for imported in _resolve(module, path, child):
                    yield Import(module, imported, child.lineno, in_function, annotations_only)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.body:
                    yield from visit(ast.Module([statement], []), in_function, True)
                for statement in child.orelse:
                    yield from visit(ast.Module([statement], []), in_function, annotations_only)
            else:
                inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                yield from visit(child, in_function or inner, annotations_only)

    yield from visit(ast.parse(path.read_text(encoding="utf-8")), False, False)


def comment_lines(module: str) -> set[int]:
    """The lines of ``module`` that carry a comment."""
    source = MODULES[module].read_text(encoding="utf-8")
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0] for token in tokens if token.type == tokenize.COMMENT}


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(set(MODULES) - set(LAYER_OF) - set(STANDALONE))
    assert not unplaced, (
        f"modules without a layer: {', '.join(unplaced)}; add each to LAYERS in "
        f"{Path(__file__).name} and to the 'Map of the code' in README.md"
    )
    gone = sorted((set(LAYER_OF) | set(STANDALONE)) - set(MODULES))
    assert not gone, f"LAYERS names modules that do not exist: {', '.join(gone)}"


def layer_violations() -> list[str]:
    problems = []
    for module in sorted(set(MODULES) & set(LAYER_OF)):
        own = LAYER_OF[module]
        for imp in imports_of(module):
            target = imp.imported
            while target not in LAYER_OF and "." in target:
                target = target.rpartition(".")[0]  # clusterjob.backends.X -> its package
            if imp.annotations_only or not target.startswith("clusterjob"):
                continue
            if target in STANDALONE or LAYER_OF.get(target, 0) > own:
                layer = LAYER_OF.get(target)
                problems.append(
                    f"{imp.where} imports {imp.imported} (layer {layer}: "
                    f"{LAYERS[layer - 1][0] if layer else 'standalone'}) from layer {own} "
                    f"({LAYERS[own - 1][0]}): a module imports only from its own layer and "
                    "those below; move the code, or pass the dependency in"
                )
    return problems


def test_no_module_imports_from_a_higher_layer() -> None:
    problems = layer_violations()
    assert not problems, "\n".join(problems)


def test_imports_inside_functions_say_why() -> None:
    problems = []
    for module in sorted(MODULES):
        commented = comment_lines(module)
        for imp in imports_of(module):
            if (
                imp.in_function
                and not imp.annotations_only
                and not {imp.line, imp.line - 1} & commented
            ):
                problems.append(
                    f"{imp.where} imports {imp.imported} inside a function without a comment "
                    "(same line or the line above) saying why: import at the top of the module, "
                    "or say what forces the import here"
                )
    assert not problems, "\n".join(problems)


def test_the_modules_import_one_another_without_cycles() -> None:
    """Within a layer too: a cycle works only by the order Python happens to import in."""
    graph = {
        module: {
            imp.imported
            for imp in imports_of(module)
            if not imp.in_function and not imp.annotations_only and imp.imported in MODULES
        }
        for module in MODULES
    }
    # A package's __init__ runs before its submodules; clusterjob re-exports from everything.
    graph["clusterjob"] = set()
    path: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in path:
            cycle = path[path.index(module) :] + [module]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        if module in done:
            return
        path.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_the_local_runner_imports_only_the_standard_library() -> None:
    for module in STANDALONE:
        outside = [
            imp
            for imp in imports_of(module)
            if not imp.annotations_only and imp.imported.partition(".")[0] not in _STDLIB
        ]
        assert not outside, "; ".join(
            f"{imp.where} imports {imp.imported}: it runs by file path without the clusterjob "
            "package (and without site-packages), so it may use the standard library only"
            for imp in outside
        )


def test_the_local_runner_runs_by_its_path_without_site_packages(tmp_path: Path) -> None:
    runner = MODULES["clusterjob.backends.local_runner"]
    env = {**os.environ, "CLUSTERJOB_LOCAL_SPOOL": str(tmp_path)}
    answer = subprocess.run(
        [sys.executable, "-I", "-S", str(runner), "status", "7"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (answer.returncode, answer.stdout, answer.stderr) == (0, "7 UNKNOWN\n", "")


_STDLIB = frozenset(
    getattr(sys, "stdlib_module_names", ())
    # Python 3.9 has no list of its own: the modules the runner uses
    or ("__future__", "argparse", "contextlib", "fcntl", "json", "os", "shlex", "signal")
    + ("socket", "subprocess", "sys", "time", "typing")
)


def test_backend_distributions_import_only_what_a_backend_may_use() -> None:
    """A backend is a translator: it may use layers 1-4 (and ``clusterjob.hookimpl``), never the
    transport, the cache, plugins or jobs, which are core's to run."""
    interface_layer = LAYER_OF["clusterjob.backends"]
    problems = []
    for path in sorted(REPO.glob("clusterjob-*/src/clusterjob_*/**/*.py")) + sorted(
        REPO.glob("examples/*/src/*/**/*.py")
    ):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {
            id(statement)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and _is_type_checking(node.test)
            for statement in node.body
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or id(node) in guarded or node.level:
                continue
            module = node.module or ""
            names = {alias.name for alias in node.names}
            if module == "clusterjob" and names <= {"hookimpl"}:
                continue
            layer = LAYER_OF.get(module)
            ours = module == "clusterjob" or module.startswith("clusterjob.")
            if ours and (layer is None or layer > interface_layer):
                problems.append(
                    f"{path.relative_to(REPO)} (line {node.lineno}) imports {module} (layer "
                    f"{layer}): a backend may import from layers 1-{interface_layer} only"
                )
    assert not problems, "\n".join(problems)


# -- the README's map ------------------------------------------------------------------

#: A row of the map: ``| 4 | `clusterjob.backends.local` | what it does |`` (``-``: standalone);
#: the module cell may name several modules.
_MAP_ROW = re.compile(r"^\|\s*(\d+|-)\s*\|([^|]*)\|")


def readme_map() -> dict[str, int | None]:
    """Module -> layer (None: standalone) from the rows of the README's "Map of the code"."""
    text = README.read_text(encoding="utf-8")
    start = text.find("Map of the code")
    assert start >= 0, "README.md has no 'Map of the code' section"
    rows: dict[str, int | None] = {}
    for line in text[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        match = _MAP_ROW.match(line)
        if match:
            layer = None if match.group(1) == "-" else int(match.group(1))
            rows.update(dict.fromkeys(re.findall(r"`([a-z_.]+)`", match.group(2)), layer))
    return rows


def test_the_readme_map_names_every_module_with_its_layer() -> None:
    written = readme_map()
    expected: dict[str, int | None] = {**LAYER_OF, **dict.fromkeys(STANDALONE)}
    wrong = [
        f"{module}: README says {written.get(module, 'nothing')}, LAYERS says {layer}"
        for module, layer in sorted(expected.items())
        if written.get(module, "missing") != layer
    ]
    extra = sorted(set(written) - set(expected))
    assert not wrong and not extra, (
        "README.md 'Map of the code' disagrees with LAYERS:\n"
        + "\n".join([*wrong, *(f"{module}: in the README, not a module" for module in extra)])
    )
