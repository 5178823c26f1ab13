"""README.md's commands run as written (Quick start, Search, Look at the hits, Evaluate).

The ```bash blocks of those sections are read from README.md itself, so an edited example is tested as edited.
The Quick start search and `llm4ms serve` run as new processes, exactly as a user types them; the other `llm4ms`
lines go through `llm4ms.cli.main`, the function the console script calls (no interpreter start-up each).
They run in a scratch folder that links `examples/` and `llm4ms/` from the clone, so relative paths resolve as
in the clone and outputs such as hits.csv land there. `pip install` and the pytest line are not run; the
public-benchmark scripts are skipped (they need the shared data folder and hours). Searches without --library
build the bundled library once per test session in the session's $LLM4MS_CACHE (a few minutes on a 2-core CPU):
those tests are marked slow.
"""
from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTIONS = ("Quick start", "Search", "Look at the hits", "Evaluate")
PLACEHOLDERS = ("LIB_DIR", "Q.msp", "LIB.msp", "--model M ", "my_library", "unknowns.msp")


def readme_blocks() -> dict[str, list[str]]:
    """Section title -> its shell commands, one per `&&` part, comments stripped, in order."""
    blocks: dict[str, list[str]] = {}
    section, in_bash = None, False
    for line in README.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#{2,3} (.+)", line)
        if heading and not in_bash:
            section = heading.group(1).strip()
            continue
        if line.startswith("```"):
            in_bash = line.strip() == "```bash" and not in_bash
            continue
        if in_bash and section in SECTIONS:
            command = re.split(r"\s+#\s", " " + line, maxsplit=1)[0].strip()
            if command and not command.startswith("#"):
                blocks.setdefault(section, []).extend(part.strip() for part in command.split("&&"))
    return blocks


def llm4ms_commands(section: str) -> list[str]:
    return [c for c in readme_blocks()[section] if c.startswith("llm4ms ")]


def run_command(command: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    args = shlex.split(command)
    script = Path(sys.executable).parent / "llm4ms"
    prefix = [str(script)] if script.is_file() else [sys.executable, "-m", "llm4ms.cli"]
    done = subprocess.run(prefix + args[1:], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2")))
    assert done.returncode == 0, f"{command}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    return done


def run_in_process(command: str, cwd: Path, monkeypatch, capsys, caplog) -> tuple[str, str]:
    """The same `llm4ms.cli.main` the console script calls, without a new interpreter (saves its start-up);
    returns (stdout, stderr + log text)."""
    from llm4ms.cli import main

    monkeypatch.chdir(cwd)
    caplog.clear()
    capsys.readouterr()
    code = main(shlex.split(command)[1:])
    out, err = capsys.readouterr()
    assert code == 0, f"{command}\nstdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}\nlog:\n{caplog.text[-3000:]}"
    return out, err + caplog.text


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    for name in ("examples", "llm4ms"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp_path


def test_readme_examples_are_concrete_and_exist():
    blocks = readme_blocks()
    assert set(blocks) == set(SECTIONS)
    commands = [c for section in SECTIONS for c in blocks[section]]
    for command in commands:
        assert not any(p in command + " " for p in PLACEHOLDERS), command
        for token in shlex.split(command):
            if token.startswith(("examples/", "llm4ms/resources/")):
                assert (ROOT / token).exists(), f"{command}: {token} does not exist"
    searches = " ".join(llm4ms_commands("Search"))
    assert "--mass 278.2 " in searches  # examples/unknown_A.csv is C18H30O2, monoisotopic 278.22
    skipped = [c for c in commands if not c.startswith(("llm4ms ", "pip install ", "python -m pytest"))]
    assert all(c.startswith(("python data_prep/", "python benchmarks/")) for c in skipped), skipped


def test_evaluate_block_runs_as_written(scratch, monkeypatch, capsys, caplog):
    outputs = [run_in_process(c, scratch, monkeypatch, capsys, caplog) for c in llm4ms_commands("Evaluate")]
    assert len(outputs) == 2 and (scratch / "candidates.msp").is_file()
    table = outputs[-1][0]
    assert "10 queries, 500 library spectra" in table
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert {"llm4ms", "cosine", "wcs", "composite", "spec2vec", "entropy"} <= set(rows)


@pytest.mark.slow
def test_search_and_plot_blocks_run_as_written(scratch, monkeypatch, capsys, caplog):
    """Quick start (a new process, as a user runs it: builds the bundled library once per session), then the
    Search block and the plot line against it."""
    start = time.monotonic()
    quick = [c for c in readme_blocks()["Quick start"] if c.startswith("llm4ms ")]
    assert quick, "Quick start has no llm4ms command"
    done = run_command(quick[0], scratch)
    assert "Query 1: FastEI measured A (compound 1)" in done.stdout and "Query 10:" in done.stdout
    assert "Traceback" not in done.stderr
    print(f"first run (bundled library build + search): {time.monotonic() - start:.0f} s")
    for command in llm4ms_commands("Search"):
        out, err = run_in_process(command, scratch, monkeypatch, capsys, caplog)
        if "--out " in command:
            target = scratch / shlex.split(command)[shlex.split(command).index("--out") + 1]
            assert target.stat().st_size > 0
        if "unknown_A.csv" in command:  # the mass filter keeps the true compound (C18H30O2, 278.22)
            assert "FastEI example compound 1" in out, out
            assert "query mass 278.2 from --mass" in err
        elif "--mass-tolerance" in command:
            assert "query masses 10 from FORMULA" in err
            assert "no molecular mass" not in err
    for command in llm4ms_commands("Look at the hits"):
        if command.startswith("llm4ms serve"):
            continue  # test_serve_block_starts
        run_in_process(command, scratch, monkeypatch, capsys, caplog)
        assert (scratch / "mirror.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_serve_block_starts(scratch):
    pytest.importorskip("uvicorn", reason="llm4ms serve needs the [web] extra")
    command = next(c for c in llm4ms_commands("Look at the hits") if c.startswith("llm4ms serve"))
    port = 8000 if "--port" not in command else int(shlex.split(command)[shlex.split(command).index("--port") + 1])
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            pytest.skip(f"port {port} is already in use on this machine")
    script = Path(sys.executable).parent / "llm4ms"
    prefix = [str(script)] if script.is_file() else [sys.executable, "-m", "llm4ms.cli"]
    proc = subprocess.Popen(prefix + shlex.split(command)[1:], cwd=scratch, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        deadline = time.monotonic() + 600  # builds the bundled library if no earlier test did
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                with direct.open(f"http://127.0.0.1:{port}/api/health", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("llm4ms serve did not answer /api/health")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
