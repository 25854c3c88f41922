"""One-way layers: no module imports a module of a higher layer (read with ``ast``, nothing
is imported).

    apps       logo_batch.cli, logo_batch.demo, benchmarks
    ─────────────────────────────────────────────────────────────────────────
    training   logo_batch.train*            beam       beam_jobs
    (siblings: neither imports the other)
    ─────────────────────────────────────────────────────────────────────────
    core       logo_batch (everything else: preprocessing, bundle, models, predict,
               data, evaluate, plots, distribute, the make-synthetic command, ...)
    ─────────────────────────────────────────────────────────────────────────
    dataset    tfds_flickr27, tfds_logo_folder (may import tfds_flickr27's helpers)

A module may import its own layer and any layer below. Every ``import`` counts, lazy
ones inside functions included. Loading a module by a name in a string
(``importlib.import_module("beam_jobs.classify_images")`` in ``logo_batch.cli``) is not
an import statement and is not checked: only the apps do that.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("tfds_flickr27", "tfds_logo_folder", "logo_batch", "beam_jobs", "benchmarks")

# (module name pattern, layer): the first pattern that matches a module gives its layer.
LAYER_OF = [
    ("logo_batch.cli", "apps"),
    ("logo_batch.demo", "apps"),
    ("benchmarks", "apps"),
    ("benchmarks.*", "apps"),
    ("logo_batch.train*", "training"),
    ("beam_jobs", "beam"),
    ("beam_jobs.*", "beam"),
    ("logo_batch", "core"),
    ("logo_batch.*", "core"),
    ("tfds_flickr27", "dataset"),
    ("tfds_flickr27.*", "dataset"),
    ("tfds_logo_folder", "dataset"),
    ("tfds_logo_folder.*", "dataset"),
]
RANK = {"dataset": 0, "core": 1, "training": 2, "beam": 2, "apps": 3}


def layer(module: str) -> str | None:
    """The layer of one of our modules, ``None`` for anything else (third-party)."""
    for pattern, name in LAYER_OF:
        if fnmatch.fnmatchcase(module, pattern):
            return name
    return None


def may_import(importer: str, imported: str) -> bool:
    """Own layer, or a lower one (training and beam are siblings: not each other)."""
    a, b = layer(importer), layer(imported)
    return b is None or a == b or RANK[b] < RANK[a]


def module_files() -> dict[str, Path]:
    """Every module of our packages by dotted name (``pkg/__init__.py`` is ``pkg``)."""
    modules = {}
    for package in PACKAGES:
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


def violations(modules: dict[str, Path], sources: dict[str, str] | None = None) -> list[str]:
    """Every import that goes up (or sideways between training and beam), one line each."""
    known = set(modules)
    out = []
    for module, path in sorted(modules.items()):
        source = path.read_text() if sources is None or module not in sources else sources[module]
        for line, imported in imports(source, module, path.name == "__init__.py", known):
            if not may_import(module, imported):
                rel = path.relative_to(REPO)
                out.append(
                    f"{rel}:{line}: {module} ({layer(module)}) imports {imported} "
                    f"({layer(imported)})"
                )
    return out


def test_every_module_has_a_layer():
    modules = module_files()
    assert {"tfds_flickr27", "logo_batch.predict", "beam_jobs.classify_images"} <= set(modules)
    assert [m for m in modules if layer(m) is None] == []


def test_the_layer_map_reads_as_documented():
    assert layer("tfds_flickr27.synthetic") == "dataset"
    assert layer("logo_batch.predict") == layer("logo_batch.synthetic") == "core"
    assert layer("logo_batch.train") == layer("logo_batch.training.trainer") == "training"
    assert layer("beam_jobs.classify_images") == "beam"
    assert layer("logo_batch.cli") == layer("logo_batch.demo") == layer("benchmarks.run") == "apps"
    assert layer("apache_beam") is None and layer("logo_batch_extra") is None


def test_no_module_imports_a_higher_layer():
    found = violations(module_files())
    assert not found, "imports against the layers (see tests/test_layers.py):\n" + "\n".join(found)


def test_imports_are_found_lazy_relative_and_from_package():
    known = {"logo_batch", "logo_batch.training", "logo_batch.training.cli", "beam_jobs"}
    source = (
        "import os\n"
        "from logo_batch import training\n"
        "def f():\n"
        "    import beam_jobs.classify_images\n"
        "from . import cli\n"
        "from .. import data\n"
    )
    assert imports(source, "logo_batch.training.trainer", False, known) == [
        (1, "os"),
        (2, "logo_batch.training"),
        (4, "beam_jobs.classify_images"),
        (5, "logo_batch.training.cli"),
        (6, "logo_batch"),
    ]


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("logo_batch.predict", "import beam_jobs"),
        ("logo_batch.bundle", "from logo_batch.training import train"),
        ("logo_batch.data", "from logo_batch import cli"),
        ("tfds_flickr27.synthetic", "from logo_batch.preprocessing import load_image"),
        ("beam_jobs.classify_images", "from logo_batch.training import TrainConfig"),
        ("logo_batch.evaluate", "def f():\n    from beam_jobs import classify_images\n"),
    ],
)
def test_an_import_against_the_layers_fails(module: str, line: str):
    modules = module_files()
    if module not in modules:
        pytest.skip(f"{module} is gone")
    source = modules[module].read_text() + "\n" + line + "\n"
    (found,) = [v for v in violations(modules, {module: source}) if module in v.split(" (")[0]]
    assert found.startswith(str(modules[module].relative_to(REPO)))


def test_flickr27_never_imports_the_folder_datasets():
    """tfds_logo_folder builds on tfds_flickr27's helpers, never the other way."""
    modules = module_files()
    found = [
        f"{path.relative_to(REPO)}:{line}: imports {imported}"
        for module, path in modules.items()
        if module.startswith("tfds_flickr27")
        for line, imported in imports(
            path.read_text(), module, path.name == "__init__.py", set(modules)
        )
        if imported.startswith("tfds_logo_folder")
    ]
    assert not found, "\n".join(found)
