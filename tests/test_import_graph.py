"""The package's import structure: no circles between llm4ms modules, production code never reaches evaluate/.

The graph is read from the source with `ast`: an edge M -> X for every ``import``/``from ... import`` that runs
when M is imported (module and class level, not inside functions, not under ``if TYPE_CHECKING``). Importing
``a.b.c`` also runs the packages ``a.b`` and ``a`` first, so those are edges too, except the importing module's
own enclosing packages (already being imported). Lazy imports inside functions are allowed to point back.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = "llm4ms"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: the only places allowed to import llm4ms.evaluate (evaluation is a consumer, never a dependency)
EVALUATE_USERS = ("llm4ms.evaluate", "llm4ms.commands.evaluate")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, node: ast.AST) -> list[str]:
    """llm4ms modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        source = _absolute(module, node)
        names = [source] + [f"{source}.{alias.name}" for alias in node.names
                            if f"{source}.{alias.name}" in MODULES]
    else:
        return []
    out = []
    for name in names:
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the package chain runs first
            target = ".".join(parts[:i])
            if target in MODULES and not (module == target or module.startswith(target + ".")):
                out.append(target)
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _eager_imports(module: str, body: list[ast.stmt]) -> set[str]:
    found: set[str] = set()
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_targets(module, node))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue  # runs only when called
        elif isinstance(node, ast.If):
            if not _type_checking(node):
                found |= _eager_imports(module, node.body) | _eager_imports(module, node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *[h.body for h in node.handlers]):
                found |= _eager_imports(module, block)
        elif isinstance(node, (ast.ClassDef, ast.With)):
            found |= _eager_imports(module, node.body)
    return found


def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))


def import_graph() -> dict[str, set[str]]:
    return {module: _eager_imports(module, _tree(module).body) for module in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_graph_sees_known_edges():
    graph = import_graph()
    assert "llm4ms.spectrum" in graph["llm4ms.io.msp"]
    assert "llm4ms.io" in graph["llm4ms.library.library"] and "llm4ms.library.manifest" in graph["llm4ms.library.store"]
    assert "llm4ms.similarity" in graph["llm4ms.evaluate.classic"]
    # a submodule does not depend on its own package, and a lazy import is not an edge
    assert "llm4ms.io" not in graph["llm4ms.io.msp"]
    assert "llm4ms.io.keys" not in graph["llm4ms.spectrum"]


def test_find_cycle_reports_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_between_llm4ms_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_production_code_never_imports_evaluate():
    offenders = []
    for module in MODULES:
        if module.startswith(EVALUATE_USERS[0] + ".") or module in EVALUATE_USERS:
            continue
        for node in ast.walk(_tree(module)):  # module level and inside functions alike
            for target in _targets(module, node):
                if target == "llm4ms.evaluate" or target.startswith("llm4ms.evaluate."):
                    offenders.append(f"{module}:{node.lineno} imports {target}")
    assert not offenders, "\n".join(offenders)


def test_every_module_imports_in_a_fresh_interpreter():
    code = (
        "import importlib, json, sys\n"
        f"names = {sorted(MODULES)!r}\n"
        "failed, missing = {}, {}\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as err:\n"
        "        if (err.name or '').split('.')[0] == 'llm4ms':\n"
        "            failed[name] = repr(err)\n"
        "        else:\n"
        "            missing[name] = err.name  # an optional extra that is not installed\n"
        "    except Exception as err:\n"
        "        failed[name] = repr(err)\n"
        "print(json.dumps({'failed': failed, 'missing': missing}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         cwd=ROOT.parent)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["failed"] == {}


def test_metadata_keys_have_one_owner():
    import llm4ms.spectrum
    from llm4ms.io.keys import CANONICAL_KEYS, _SYNONYMS

    graph = import_graph()
    assert not any(t == "llm4ms.spectrum" for t in graph["llm4ms.io.keys"]), "io.keys must not import spectrum"
    assert not hasattr(llm4ms.spectrum, "CANONICAL_KEYS")
    assert CANONICAL_KEYS[:3] == ("id", "name", "inchikey") and set(CANONICAL_KEYS) == set(_SYNONYMS)
