"""The layout is the architecture: imports point inward (cli -> ops -> shells, clients -> core), core does no I/O of
its own, and no module imports another that imports it back. Walked with `ast`, so lazy imports inside functions
count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "stackctl"

# Which layers a layer may import from (besides itself, and the top-level package for __version__).
ALLOWED = {
    "core": {"core"},
    "shells": {"core", "shells"},
    "clients": {"core", "clients"},
    "ops": {"core", "shells", "clients", "ops"},
    "cli": {"core", "ops", "cli"},
}
# Modules of the standard library and third-party packages that do I/O, which core must not import.
CORE_FORBIDDEN = {"subprocess", "socket", "shutil", "tempfile", "requests", "docker", "os", "urllib"}


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package_dir: Path = PACKAGE) -> list[tuple[str, int]]:
    """Every module `path` imports (absolute names), with the line."""
    module = _module_name(path, package_dir)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{alias.name}", node.lineno) for alias in node.names]
    return found


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def _internal_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, _ in _imports(path):
            if target in MODULES and target != module:
                edges[module].add(target)
    return edges


def test_every_module_lives_in_a_layer():
    loose = [m for m in MODULES if _layer(m) is None and m not in ("stackctl", "stackctl.__main__")]
    assert loose == [], "modules outside core/, shells/, clients/, ops/, cli/"


@pytest.mark.parametrize("module", [m for m in MODULES if _layer(m)])
def test_imports_point_inward(module: str):
    layer = _layer(module)
    wrong = []
    for target, line in _imports(MODULES[module]):
        if target.startswith("stackctl.") and target in MODULES:
            target_layer = _layer(target)
            if target_layer is not None and target_layer not in ALLOWED[layer]:
                wrong.append(f"{MODULES[module].name}:{line} imports {target} ({layer} -> {target_layer})")
    assert wrong == []


@pytest.mark.parametrize("module", [m for m in MODULES if _layer(m) == "core"])
def test_core_does_no_io(module: str):
    found = [f"line {line}: {target}" for target, line in _imports(MODULES[module])
             if target.split(".")[0] in CORE_FORBIDDEN]
    assert found == [], f"{module} imports I/O modules; that belongs in a shell"


def find_cycles(edges: dict[str, set[str]]) -> list[str]:
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_import_cycles():
    assert find_cycles(_internal_edges()) == []


def test_the_checker_sees_a_bad_arrow_and_a_cycle(tmp_path):
    """The walk above would notice: an outward import and a cycle in a throwaway package."""
    root = tmp_path / "stackctl"
    (root / "core").mkdir(parents=True)
    (root / "ops").mkdir()
    for init in (root / "__init__.py", root / "core" / "__init__.py", root / "ops" / "__init__.py"):
        init.write_text("")
    (root / "core" / "a.py").write_text("from stackctl.ops import b\n")
    (root / "ops" / "b.py").write_text("def f():\n    from stackctl.core import a\n")
    module = "stackctl.core.a"
    imports = [t for t, _ in _imports(root / "core" / "a.py", root)]
    assert "stackctl.ops.b" in imports and _layer("stackctl.ops.b") not in ALLOWED[_layer(module)]
    lazy = [t for t, _ in _imports(root / "ops" / "b.py", root)]
    assert "stackctl.core.a" in lazy  # imports inside functions are seen
    assert find_cycles({"stackctl.core.a": {"stackctl.ops.b"}, "stackctl.ops.b": {"stackctl.core.a"}}) == [
        "stackctl.core.a -> stackctl.ops.b -> stackctl.core.a"]
