"""One-way layers and no import cycles (read with ``ast``: nothing is imported).

    apps        logo_batch.cli.*, benchmarks.*, experiments.*      (may import anything)
    ───────────────────────────────────────────────────────────────────────────────────
    training    logo_batch.training.*  │
    evaluation  logo_batch.evaluation.*│  beam     beam_jobs.*       │
    data        logo_batch.data.*      │  options  logo_batch.options│  report logo_batch.report.*
    ───────────────────────────────────────────────────────────────────────────────────
    inference   logo_batch.inference.*  (decode, bundle, engines, windows, rows)
    base        logo_batch, logo_batch.console, logo_batch.arguments, logo_batch.result_csv
    dataset     tfds_flickr27, and the dataset packages built on it (tfds_logo_folder)

A module may import its own layer and the layers below it. The left column is a ladder
(training > evaluation > data); ``options`` stands on inference and ``beam`` on options;
``report`` stands on base alone (it reads results CSVs without TensorFlow or Beam); no
column imports another. Every
``import`` counts, lazy ones inside functions included, and no two of our modules may
import each other, however long the loop. Loading a module by a name in a string
(``importlib.import_module("beam_jobs.classify_images")`` in ``logo_batch.cli``) is not
an import statement and is not checked: only the apps do that.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("logo_batch", "beam_jobs", "benchmarks", "experiments")

# (module name pattern, layer): the first pattern that matches a module gives its layer.
LAYER_OF = [
    ("logo_batch.cli", "apps"),
    ("logo_batch.cli.*", "apps"),
    ("benchmarks", "apps"),
    ("benchmarks.*", "apps"),
    ("experiments", "apps"),
    ("experiments.*", "apps"),
    ("beam_jobs", "beam"),
    ("beam_jobs.*", "beam"),
    ("logo_batch.options", "options"),
    ("logo_batch.training", "training"),
    ("logo_batch.training.*", "training"),
    ("logo_batch.evaluation", "evaluation"),
    ("logo_batch.evaluation.*", "evaluation"),
    ("logo_batch.data", "data"),
    ("logo_batch.data.*", "data"),
    ("logo_batch.inference", "inference"),
    ("logo_batch.inference.*", "inference"),
    ("logo_batch.report", "report"),
    ("logo_batch.report.*", "report"),
    ("logo_batch", "base"),
    ("logo_batch.console", "base"),
    ("logo_batch.arguments", "base"),
    ("logo_batch.result_csv", "base"),
    ("tfds_*", "dataset"),
]
_CORE = ("dataset", "base", "inference")
# layer: the layers its modules may import (their own included).
MAY_IMPORT = {
    "dataset": {"dataset"},
    "base": {"dataset", "base"},
    "inference": {*_CORE},
    "data": {*_CORE, "data"},
    "evaluation": {*_CORE, "data", "evaluation"},
    "training": {*_CORE, "data", "evaluation", "training"},
    "options": {*_CORE, "options"},
    "beam": {*_CORE, "options", "beam"},
    "report": {"base", "report"},  # pure Python and Pillow: no TensorFlow, no Beam
}


def layer(module: str) -> str | None:
    """The layer of one of our modules, ``None`` for anything else (third-party)."""
    for pattern, name in LAYER_OF:
        if fnmatch.fnmatchcase(module, pattern):
            return name
    return None


def may_import(importer: str, imported: str) -> bool:
    """The importer's layer allows the imported module's (third-party: always)."""
    a, b = layer(importer), layer(imported)
    return b is None or a == "apps" or b in MAY_IMPORT[a]


def module_files() -> dict[str, Path]:
    """Every module of our packages by dotted name (``pkg/__init__.py`` is ``pkg``)."""
    packages = [*PACKAGES, *(p.name for p in REPO.glob("tfds_*") if p.is_dir())]
    modules = {}
    for package in packages:
        if not (REPO / package).is_dir():
            continue
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports(source: str, module: str, is_package: bool, known: set[str]) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every import statement in ``source``.

    ``from a import b`` counts as importing ``a.b`` when that is one of our modules,
    else ``a``; relative imports are resolved against ``module``.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package if is_package else package[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.append((node.lineno, candidate if candidate in known else base))
    return sorted(found)


def import_graph(
    modules: dict[str, Path], sources: dict[str, str] | None = None
) -> dict[str, list[tuple[int, str]]]:
    """Each of our modules: ``(line, module)`` of every import of it, of our modules
    only (a module's import of itself, as a ``__main__`` re-importing its importable
    copy does, is not an edge)."""
    known = set(modules)
    graph = {}
    for module, path in sorted(modules.items()):
        source = path.read_text() if sources is None or module not in sources else sources[module]
        graph[module] = [
            (line, imported)
            for line, imported in imports(source, module, path.name == "__init__.py", known)
            if imported in known and imported != module
        ]
    return graph


def violations(modules: dict[str, Path], sources: dict[str, str] | None = None) -> list[str]:
    """Every import a module's layer does not allow, one line each."""
    out = []
    for module, edges in import_graph(modules, sources).items():
        for line, imported in edges:
            if not may_import(module, imported):
                rel = modules[module].relative_to(REPO)
                out.append(
                    f"{rel}:{line}: {module} ({layer(module)}) imports {imported} "
                    f"({layer(imported)})"
                )
    return out


def cycles(modules: dict[str, Path], sources: dict[str, str] | None = None) -> list[list[str]]:
    """The strongly connected components of two or more modules (Tarjan's algorithm,
    iterative): each is a set of modules that import each other, directly or not."""
    graph = {
        m: sorted({i for _, i in edges}) for m, edges in import_graph(modules, sources).items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_module_has_a_layer():
    modules = module_files()
    assert {"tfds_flickr27", "logo_batch.inference.predict", "beam_jobs.classify_images"} <= set(
        modules
    )
    assert [m for m in modules if layer(m) is None] == []


def test_the_layer_map_reads_as_documented():
    assert layer("tfds_flickr27.synthetic") == layer("tfds_folder.builder") == "dataset"
    assert layer("logo_batch") == layer("logo_batch.console") == "base"
    assert layer("logo_batch.arguments") == layer("logo_batch.result_csv") == "base"
    assert layer("logo_batch.report.html") == "report"
    assert layer("logo_batch.inference") == layer("logo_batch.inference.engines") == "inference"
    assert layer("logo_batch.data.pipeline") == "data"
    assert layer("logo_batch.evaluation.metrics") == "evaluation"
    assert layer("logo_batch.training") == layer("logo_batch.training.trainer") == "training"
    assert layer("logo_batch.options") == "options"
    assert layer("beam_jobs") == layer("beam_jobs.classify_images") == "beam"
    assert layer("logo_batch.cli") == layer("logo_batch.cli.demo") == "apps"
    assert layer("benchmarks.run") == layer("experiments.probe_resize") == "apps"
    assert layer("apache_beam") is None and layer("logo_batch_extra") is None
    assert layer("logo_batch.optionsx") is None and layer("logo_batch.cli_old") is None


def test_no_module_imports_a_layer_it_may_not():
    found = violations(module_files())
    assert not found, "imports against the layers (see tests/test_layers.py):\n" + "\n".join(found)


def test_no_modules_import_each_other():
    found = cycles(module_files())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_imports_are_found_lazy_relative_and_from_package():
    known = {"logo_batch", "logo_batch.training", "logo_batch.training.config", "beam_jobs"}
    source = (
        "import os\n"
        "from logo_batch import training\n"
        "def f():\n"
        "    import beam_jobs.classify_images\n"
        "from . import config\n"
        "from .. import data\n"
    )
    assert imports(source, "logo_batch.training.trainer", False, known) == [
        (1, "os"),
        (2, "logo_batch.training"),
        (4, "beam_jobs.classify_images"),
        (5, "logo_batch.training.config"),
        (6, "logo_batch"),
    ]


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("logo_batch.inference.predict", "import beam_jobs.job"),
        ("logo_batch.inference.bundle", "from logo_batch.training import trainer"),
        ("logo_batch.inference.engines", "from logo_batch import options"),
        ("logo_batch.inference.whole_photo", "from logo_batch.data import pipeline"),
        ("logo_batch.data.pipeline", "from logo_batch.evaluation import metrics"),
        ("logo_batch.evaluation.metrics", "from logo_batch.training import config"),
        ("logo_batch.training.config", "from logo_batch.cli import train"),
        ("logo_batch.options", "from logo_batch.data import pipeline"),
        ("beam_jobs.job", "from logo_batch.training import TrainConfig"),
        ("beam_jobs.decoding", "from logo_batch.data import pipeline"),
        ("logo_batch.data.pipeline", "from beam_jobs import shards"),
        ("logo_batch.report.reading", "from logo_batch.inference import predict"),
        ("logo_batch.arguments", "from logo_batch.inference import engines"),
        ("tfds_flickr27.synthetic", "from logo_batch.inference import preprocessing"),
        ("logo_batch.console", "def f():\n    from logo_batch.inference import bundle\n"),
    ],
)
def test_an_import_against_the_layers_fails(module: str, line: str):
    modules = module_files()
    source = modules[module].read_text() + "\n" + line + "\n"
    (found,) = [v for v in violations(modules, {module: source}) if module in v.split(" (")[0]]
    assert found.startswith(str(modules[module].relative_to(REPO)))


@pytest.mark.parametrize(
    ("module", "line", "cycle"),
    [
        (  # the circle issue 31 found: predict and whole_photo importing each other
            "logo_batch.inference.whole_photo",
            "def f():\n    from logo_batch.inference import predict\n",
            ["logo_batch.inference.predict", "logo_batch.inference.whole_photo"],
        ),
        (  # a longer loop: bundle -> predict -> engines -> bundle
            "logo_batch.inference.bundle",
            "from logo_batch.inference.predict import Prediction",
            ["logo_batch.inference.bundle", "logo_batch.inference.predict"],
        ),
        (
            "beam_jobs.errors",
            "from beam_jobs.job import JobConfig",
            ["beam_jobs.errors", "beam_jobs.job"],
        ),
    ],
)
def test_an_import_cycle_fails(module: str, line: str, cycle: list[str]):
    modules = module_files()
    source = modules[module].read_text() + "\n" + line + "\n"
    assert violations(modules, {module: source}) == []  # allowed by the layers alone
    (found,) = cycles(modules, {module: source})
    assert set(cycle) <= set(found) and module in found


def test_flickr27_never_imports_the_folder_datasets():
    """tfds_logo_folder builds on tfds_flickr27's helpers, never the other way."""
    modules = module_files()
    found = [
        f"{modules[module].relative_to(REPO)}:{line}: imports {imported}"
        for module, edges in import_graph(modules).items()
        if module.split(".")[0] == "tfds_flickr27"
        for line, imported in edges
        if imported.split(".")[0] != "tfds_flickr27" and layer(imported) == "dataset"
    ]
    assert not found, "\n".join(found)
