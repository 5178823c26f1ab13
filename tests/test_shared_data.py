"""Finding the shared data folder: only $LLM4MS_SHARED_DATA, then ../shared/data beside the clone; never at import."""
from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import pytest

import llm4ms.data.shared as shared
from llm4ms.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "data_prep").glob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
ENV = "LLM4MS_SHARED_DATA"
LOOKUPS = {"shared_data_dir", "shared_path", "shared_file"}


def fake_clone(tmp_path: Path, with_data: bool) -> Path:
    """tmp/clone (a repository root) with tmp/shared/data beside it when `with_data`."""
    clone = tmp_path / "clone"
    (clone / "llm4ms").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("[project]\nname = 'llm4ms'\n")
    if with_data:
        (tmp_path / "shared" / "data" / "massbank_ei").mkdir(parents=True)
    return clone


def test_beside_the_clone_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(shared, "_REPO", fake_clone(tmp_path, with_data=True))
    assert shared.shared_data_dir() == tmp_path / "shared" / "data"
    assert shared.shared_path("massbank_ei", "x.msp") == tmp_path / "shared" / "data" / "massbank_ei" / "x.msp"


def test_no_fixed_absolute_fallback(tmp_path, monkeypatch):
    """Without the env var and without ../shared/data beside the clone there is no data, wherever the machine
    keeps a copy (the old lookup also tried a fixed /work/shared/data)."""
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(shared, "_REPO", fake_clone(tmp_path, with_data=False))
    assert shared.shared_data_dir(required=False) is None
    assert shared.shared_file("massbank_ei", "massbank_ei_nominal.msp") is None
    with pytest.raises(ConfigError, match="LLM4MS_SHARED_DATA") as err:
        shared.shared_data_dir()
    assert len(str(err.value).splitlines()) == 1


def test_env_var_wins_and_a_wrong_one_never_falls_through(tmp_path, monkeypatch):
    monkeypatch.setattr(shared, "_REPO", fake_clone(tmp_path, with_data=True))
    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.setenv(ENV, str(mine))
    assert shared.shared_data_dir() == mine
    monkeypatch.setenv(ENV, str(tmp_path / "typo"))  # set but missing: an error, not ../shared/data
    assert shared.shared_data_dir(required=False) is None
    with pytest.raises(ConfigError, match="typo: no such folder"):
        shared.shared_data_dir()
    monkeypatch.setenv(ENV, "")  # empty counts as unset
    assert shared.shared_data_dir() == tmp_path / "shared" / "data"


def test_an_empty_data_folder_makes_data_files_missing_not_errors(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    assert shared.shared_data_dir() == tmp_path
    assert shared.shared_file("massbank_ei", "massbank_ei_nominal.msp") is None


def test_installed_package_does_not_look_beside_site_packages(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    site = tmp_path / "site-packages"
    site.mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    monkeypatch.setattr(shared, "_REPO", site)  # no pyproject.toml: not a clone
    assert shared.repo_root() is None
    assert shared.shared_data_dir(required=False) is None


def test_portable_paths_are_relative_to_the_repo_or_the_data_folder(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "massbank_ei").mkdir(parents=True)
    monkeypatch.setenv(ENV, str(data))
    assert shared.portable_path(data / "massbank_ei" / "a.msp") == "shared:massbank_ei/a.msp"
    assert shared.portable_path(ROOT / "examples" / "unknown_A.csv") == "examples/unknown_A.csv"
    assert shared.portable_path(tmp_path / "elsewhere.msp") == str(tmp_path / "elsewhere.msp")  # as given
    assert shared.resolve_portable("shared:massbank_ei/a.msp") == data / "massbank_ei" / "a.msp"
    assert shared.resolve_portable("examples/unknown_A.csv") == ROOT / "examples" / "unknown_A.csv"


def _module_level_lookups(path: Path) -> list[str]:
    """Calls of shared_data_dir/shared_path/shared_file that run at import (outside any def)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in LOOKUPS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_no_module_or_script_looks_up_the_data_at_import():
    files = [p for folder in ("llm4ms", "data_prep", "benchmarks", "recipes", "tests")
             for p in sorted((ROOT / folder).rglob("*.py"))]
    assert len(files) > 50
    offenders = [hit for p in files for hit in _module_level_lookups(p)]
    assert offenders == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scripts_import_without_shared_data(script, monkeypatch):
    """Importing any data_prep/benchmarks script must not need the data (the test collection imports them)."""
    def unavailable(required: bool = True):
        if required:
            raise ConfigError("shared data folder not found (test)")
        return None

    monkeypatch.setattr(shared, "shared_data_dir", unavailable)
    monkeypatch.setattr(sys, "path", [str(script.parent), str(ROOT)] + sys.path)
    for name in ("tokens_per_spectrum", "_bench"):  # sibling modules some scripts import by name
        monkeypatch.delitem(sys.modules, name, raising=False)
    spec = importlib.util.spec_from_file_location(f"_script_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert hasattr(module, "main") or script.name.startswith("_")


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_committed_results_record_no_absolute_folders():
    offenders = []
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        for text in _strings(json.loads(path.read_text())):
            for word in text.split():
                if word.startswith(("/", "~")) and word.count("/") >= 2:
                    offenders.append(f"{path.name}: {word}")
    assert offenders == []
