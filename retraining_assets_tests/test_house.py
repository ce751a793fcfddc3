"""The house rules, checked on the source: no import cycle among ``retraining_assets`` modules
(imports inside functions included, ``if TYPE_CHECKING:`` blocks excluded because they never
run), no module over ``MAX_LINES`` lines (frozen migrations exempt), a test folder that
mirrors every package, and a README whose contents list links every section."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "retraining_assets"
MAX_LINES = 600  # issue 16: "modules under ~600 lines"
FROZEN = PACKAGE / "migrations" / "versions"
TESTS = PACKAGE.parent / "retraining_assets_tests"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    return skipped


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every ``retraining_assets`` module ``name`` imports; importing ``a.b.c`` also runs the
    packages ``a.b`` and ``a``, so they count as imported too."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}
    found: set[str] = set()
    for target in targets:
        parts = target.split(".")
        for end in range(1, len(parts) + 1):
            candidate = ".".join(parts[:end])
            if candidate in modules and candidate != name and not name.startswith(candidate + "."):
                found.add(candidate)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_among_the_package_modules() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # a top-level import, and one inside a function
    assert graph["retraining_assets.cli.models"] >= {
        "retraining_assets.cli.common",
        "retraining_assets.core.lifecycle",
    }
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    "path", [p for p in _modules().values() if FROZEN not in p.parents], ids=_module_name
)
def test_no_module_is_over_the_line_limit(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {lines} lines"


def _unmirrored(package: Path, tests: Path, frozen: Path) -> list[str]:
    """The packages under ``package`` (folders with ``__init__.py``, ``frozen`` and below
    exempt) with no test package at the same path under ``tests``."""
    packages = [init.parent for init in sorted(package.rglob("__init__.py"))]
    return [
        str(folder.relative_to(package.parent))
        for folder in packages
        if folder != frozen
        and frozen not in folder.parents
        and not (tests / folder.relative_to(package) / "__init__.py").is_file()
    ]


def test_the_mirror_check_names_a_package_without_a_test_folder(tmp_path: Path) -> None:
    package, tests = tmp_path / "pkg", tmp_path / "pkg_tests"
    for folder in (package, package / "a", package / "a" / "b", package / "frozen", tests):
        folder.mkdir(parents=True)
        (folder / "__init__.py").touch()
    (tests / "a").mkdir()
    (tests / "a" / "__init__.py").touch()
    assert _unmirrored(package, tests, package / "frozen") == ["pkg/a/b"]


def test_every_package_has_a_mirrored_test_folder() -> None:
    assert _unmirrored(PACKAGE, TESTS, FROZEN) == []


def test_the_readmes_contents_link_every_section_in_order() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    sections = re.findall(r"^## (.+)$", readme, flags=re.M)
    (contents,) = [line for line in readme.splitlines() if line.startswith("**Contents:**")]
    links = re.findall(r"\[([^\]]+)\]\(#([^)]+)\)", contents)
    assert [title for title, _ in links] == sections
    for title, anchor in links:  # GitHub's anchors: lower case, punctuation dropped, - for spaces
        assert anchor == re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
