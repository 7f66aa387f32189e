"""The package's import rules (README, "Layout"), checked on the source so a broken rule fails here.

- `lib/` and `synthetic/` are pure: they import nothing of ours outside `lib/` (and their own folder),
  and never Dagster;
- nothing outside `synthetic/` imports `synthetic/` (the generator's truth: its payers, base rates and causal
  grids); the demo runs the generator's command line in a subprocess. The test suite and benchmarks may;
- `platform/` (plumbing) imports `lib/` and itself;
- `defs/` (assets and orchestration) imports `lib/`, `platform/` and itself;
- `definitions.py` imports `defs/` and `platform/`;
- `serving/` (the scoring service) imports `lib/`, `platform/`, `defs/` (the batch's own scoring path) and itself;
- `cli/` may import anything above; nothing imports `cli/` except the `python -m rcm_assets` entry point;
- no import cycles between modules, counting imports inside functions too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "rcm_assets"

# area -> areas it may import (an area is the first name under rcm_assets, or the module itself)
ALLOWED = {
    "lib": {"lib"},
    "synthetic": {"lib", "synthetic"},
    "platform": {"lib", "platform"},
    "defs": {"lib", "platform", "defs"},
    "definitions": {"defs", "platform"},
    "serving": {"lib", "platform", "defs", "serving"},
    "cli": {"lib", "platform", "defs", "definitions", "serving", "cli"},
    "__main__": {"cli"},
    "__init__": set(),
}
PURE_AREAS = {"lib", "synthetic"}
DAGSTER_PACKAGES = ("dagster", "dagster_pandas", "dagster_pandera", "dagster_webserver", "dagster_graphql")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> Iterator[tuple[str, int]]:
    """Every module imported by the file (at any depth), as (dotted name, line)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in known else base), node.lineno


def area_of(module: str, top: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__" if module == top else parts[0]


def violations(root: Path) -> list[str]:
    """Each broken rule as 'file:line: what'."""
    top = root.name
    found = modules(root)
    problems = []
    for name, path in found.items():
        area = area_of(name, top)
        allowed = ALLOWED.get(area)
        where = f"{path.relative_to(root.parent)}"
        if allowed is None:
            problems.append(f"{where}: module outside the documented areas ({area})")
            continue
        for target, line in imports_of(path, name, set(found)):
            first = target.split(".")[0]
            if area in PURE_AREAS and first in DAGSTER_PACKAGES:
                problems.append(f"{where}:{line}: {area} must not import {target}")
            if first != top:
                continue
            target_area = area_of(target, top)
            if target_area != area and target_area not in allowed:
                problems.append(f"{where}:{line}: {area} must not import {target}")
    return problems


def cycles(root: Path) -> list[list[str]]:
    """Import cycles between our modules (strongly connected components larger than one module)."""
    found = modules(root)
    graph = {name: sorted({t for t, _ in imports_of(path, name, set(found)) if t in found and t != name})
             for name, path in found.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_the_package_keeps_its_import_rules():
    assert violations(PACKAGE_ROOT) == []


def synthetic_imports(root: Path) -> list[str]:
    """Every import of `<package>.synthetic` (at any depth, relative imports resolved) in a module outside
    `<package>/synthetic/`, as 'file:line: imports name'."""
    top = root.name
    found = modules(root)
    hits = []
    for name, path in found.items():
        if area_of(name, top) == "synthetic":
            continue
        for target, line in imports_of(path, name, set(found)):
            if target == f"{top}.synthetic" or target.startswith(f"{top}.synthetic."):
                hits.append(f"{path.relative_to(root.parent)}:{line}: imports {target}")
    return hits


def test_nothing_outside_synthetic_imports_the_generator():
    """The generator's truth (synthetic/world.py, synthetic/hospital_b.py) must not reach the pipeline."""
    assert synthetic_imports(PACKAGE_ROOT) == []


@pytest.mark.parametrize(("files", "expected"), [
    ({"cli/demo.py": "from rcm_assets.synthetic import generate\n", "synthetic/generator.py": ""},
     "rcm_assets/cli/demo.py:1: imports rcm_assets.synthetic"),
    ({"lib/features.py": "def f():\n    from rcm_assets.synthetic.world import PAYERS\n", "synthetic/world.py": ""},
     "rcm_assets/lib/features.py:2: imports rcm_assets.synthetic.world"),
    ({"defs/gold.py": "from ..synthetic import hospital_b\n", "synthetic/hospital_b.py": ""},
     "rcm_assets/defs/gold.py:1: imports rcm_assets.synthetic.hospital_b"),
    ({"platform/io.py": "import rcm_assets.synthetic.world as w\n", "synthetic/world.py": ""},
     "rcm_assets/platform/io.py:1: imports rcm_assets.synthetic.world"),
])
def test_an_import_of_synthetic_outside_it_is_reported(tmp_path, files, expected):
    root = write_package(tmp_path, files)
    assert expected in synthetic_imports(root)
    assert any(expected.split(": ")[0] in v for v in violations(root))  # the area rules refuse it too


def test_synthetic_may_import_itself(tmp_path):
    root = write_package(tmp_path, {"synthetic/a.py": "from rcm_assets.synthetic import world\n",
                                    "synthetic/world.py": ""})
    assert synthetic_imports(root) == []


def test_the_package_has_no_import_cycles():
    assert cycles(PACKAGE_ROOT) == []


def test_every_area_is_a_folder_with_modules():
    for area in ("lib", "synthetic", "platform", "defs", "cli"):
        folder = PACKAGE_ROOT / area
        assert (folder / "__init__.py").is_file(), area
        assert len(list(folder.glob("*.py"))) > 1, area
    assert sorted(p.name for p in PACKAGE_ROOT.glob("*.py")) == ["__init__.py", "__main__.py", "definitions.py"]


def write_package(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "rcm_assets" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in [root / "rcm_assets", *(p for p in (root / "rcm_assets").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return root / "rcm_assets"


@pytest.mark.parametrize(("files", "expected"), [
    ({"lib/a.py": "import dagster as dg\n"}, "rcm_assets/lib/a.py:1: lib must not import dagster"),
    ({"lib/a.py": "from rcm_assets.platform import io\n", "platform/io.py": ""},
     "rcm_assets/lib/a.py:1: lib must not import rcm_assets.platform.io"),
    ({"defs/a.py": "def f():\n    from rcm_assets.cli import main\n", "cli/main.py": ""},
     "rcm_assets/defs/a.py:2: defs must not import rcm_assets.cli.main"),
    ({"platform/a.py": "from rcm_assets.defs import bronze\n", "defs/bronze.py": ""},
     "rcm_assets/platform/a.py:1: platform must not import rcm_assets.defs.bronze"),
    ({"synthetic/g.py": "from dagster_pandas import x\n"},
     "rcm_assets/synthetic/g.py:1: synthetic must not import dagster_pandas"),
    ({"loose.py": ""}, "rcm_assets/loose.py: module outside the documented areas (loose)"),
])
def test_a_broken_rule_is_reported_with_file_and_line(tmp_path, files, expected):
    assert expected in violations(write_package(tmp_path, files))


def test_a_cycle_is_reported(tmp_path):
    root = write_package(tmp_path, {
        "cli/a.py": "from rcm_assets.cli import b\n",
        "cli/b.py": "def f():\n    from rcm_assets.cli.a import x\n",
    })
    assert cycles(root) == [["rcm_assets.cli.a", "rcm_assets.cli.b"]]
