"""Library folders under fault injection: damaged files, interrupted builds, two writers, crafted models.

Every damaged library must give one `Llm4msError` line naming the folder and how to rebuild it, never a
numpy / pyarrow / faiss / UnicodeDecodeError traceback; interrupted builds must be repaired by rerunning
them; a second writer is refused; a library's manifest must not choose a model to download.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from llm4ms.errors import ConfigError, Llm4msError
from llm4ms.library import Library

from _fakes import FakeEncoder, random_spectra

N = 60


@pytest.fixture(scope="module")
def spectra():
    return random_spectra(N, seed=5)


@pytest.fixture(scope="module")
def pristine(spectra, tmp_path_factory):
    """A complete library (built once) that each test copies before damaging it."""
    folder = tmp_path_factory.mktemp("pristine") / "lib"
    Library.build(spectra, folder, FakeEncoder(), chunk_size=16, show_progress=False)
    return folder


def copy_of(pristine: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "lib"
    shutil.copytree(pristine, folder)
    return folder


# ---- ways to damage each file -----------------------------------------------------------------------
def _truncate(fraction):
    def damage(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[:int(len(data) * fraction)])
    return damage


def _write(blob):
    return lambda path: path.write_bytes(blob)


def _flip(position):
    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        i = int(len(data) * position) if isinstance(position, float) else position
        data[i] ^= 0xFF
        path.write_bytes(bytes(data))
    return damage


def _append(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"\0" * 64)


def _delete(path: Path) -> None:
    path.unlink()


def _resave(change):
    def damage(path: Path) -> None:
        array = np.load(path)
        with open(path, "wb") as handle:
            np.save(handle, change(array))
    return damage


def _manifest(change):
    def damage(path: Path) -> None:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    return damage


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _parquet(change):
    def damage(path: Path) -> None:
        import pyarrow.parquet as pq

        pq.write_table(change(pq.read_table(path)), path)
    return damage


def _mass_as_text(table):
    import pyarrow as pa

    i = table.column_names.index("exact_mass")
    return table.set_column(i, "exact_mass", pa.array([str(x) for x in table.column("exact_mass").to_pylist()]))


def _other_index(path: Path) -> None:
    import faiss

    index = faiss.IndexFlatIP(32)
    index.add(np.random.default_rng(0).standard_normal((7, 32)).astype(np.float32))
    faiss.write_index(index, str(path))


def _count_plus_one(data):
    data["count"] += 1
    data["shards"][-1]["count"] += 1


RNG = np.random.default_rng(11)
DAMAGE = {
    "manifest.json": {
        "truncated": _truncate(0.5), "empty": _write(b""), "garbled-bytes": _write(b"\xff\xfe\x00\x81garbage\xc3"),
        "random": _write(RNG.bytes(700)), "json-list": _write(b"[1, 2]"), "deep": _write(b"[" * 100_000),
        "count-text": _manifest(_set("count", "abc")), "model-null": _manifest(_set("model", None)),
        "dim-text": _manifest(_set("model", "dim", "x")), "dtype-int8": _manifest(_set("dtype", "int8")),
        "index-path": _manifest(_set("index", "file", "../../../etc/passwd")),
        "index-kind": _manifest(_set("index", "spec", "kind", "bogus")),
        "shards-text": _manifest(_set("shards", "x")), "complete-text": _manifest(_set("complete", "yes")),
        "count-mismatch": _manifest(_count_plus_one), "dim-changed": _manifest(_set("model", "dim", 16)),
        "shard-stem-path": _manifest(lambda d: d["shards"][0].update(stem="../../x")),
    },
    "embeddings.npy": {
        "truncated": _truncate(0.5), "header-only": _truncate(0.02), "empty": _write(b""),
        "random": _write(RNG.bytes(5000)), "header-flip": _flip(0), "middle-flip": _flip(0.6), "appended": _append,
        "float64": _resave(lambda a: a.astype(np.float64)), "rows-1": _resave(lambda a: a[:-1]),
        "dim-16": _resave(lambda a: np.ascontiguousarray(a[:, :16])), "int32": _resave(lambda a: a.view(np.int32)),
        "pickled": lambda p: np.save(p, np.array([{"x": 1}], dtype=object), allow_pickle=True),
        "deleted": _delete,
    },
    "peaks_mz.npy": {"truncated": _truncate(0.7), "float64": _resave(lambda a: a.astype(np.float64)),
                     "shorter": _resave(lambda a: a[:-3]), "2d": _resave(lambda a: a.reshape(1, -1)),
                     "deleted": _delete},
    "peaks_intensity.npy": {"shorter": _resave(lambda a: a[:-1]), "random": _write(RNG.bytes(300)),
                            "middle-flip": _flip(0.5)},
    "peaks_offsets.npy": {"decreasing": _resave(lambda a: a[::-1].copy()), "float": _resave(lambda a: a * 1.0),
                          "truncated": _truncate(0.9), "longer": _resave(lambda a: np.append(a, a[-1]))},
    "metadata.parquet": {
        "truncated": _truncate(0.5), "empty": _write(b""), "random": _write(RNG.bytes(4000)),
        "middle-flip": _flip(0.5), "rows-1": _parquet(lambda t: t.slice(0, t.num_rows - 1)),
        "mass-text": _parquet(_mass_as_text), "no-name": _parquet(lambda t: t.drop(["name"])),
        "deleted": _delete,
    },
    "index.faiss": {"truncated": _truncate(0.5), "empty": _write(b""), "random": _write(RNG.bytes(9000)),
                    "middle-flip": _flip(0.5), "header-flip": _flip(1), "other-index": _other_index,
                    "deleted": _delete},
}
CASES = [(name, kind) for name, kinds in DAMAGE.items() for kind in kinds]


def _without_checksums(folder: Path) -> None:
    """Make the manifest look like one written before checksums were recorded (structural checks only)."""
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data.pop("files", None)
    for key in ("size", "head_tail_sha256"):
        (data.get("index") or {}).pop(key, None)
    path.write_text(json.dumps(data))


def _open_and_search(folder: Path, spectra) -> None:
    library = Library.load(folder)
    library.search(spectra[:2], k=3, encoder=FakeEncoder())
    library.spectrum(N - 1)


def _assert_one_line(err: Llm4msError, folder: Path) -> None:
    text = str(err)
    assert "\n" not in text and len(text) < 600, text
    assert text.startswith(str(folder)), text
    assert "rebuild" in text or "llm4ms embed" in text or "llm4ms index" in text, text


@pytest.mark.parametrize("name, kind", CASES, ids=[f"{n}:{k}" for n, k in CASES])
def test_damaged_file_gives_one_clean_error(pristine, spectra, tmp_path, name, kind):
    folder = copy_of(pristine, tmp_path)
    DAMAGE[name][kind](folder / name)
    with pytest.raises(Llm4msError) as caught:
        _open_and_search(folder, spectra)
    _assert_one_line(caught.value, folder)


@pytest.mark.parametrize("name, kind", CASES, ids=[f"{n}:{k}" for n, k in CASES])
def test_damage_without_recorded_checksums_never_leaks_a_traceback(pristine, spectra, tmp_path, name, kind):
    """Libraries from before checksums: the structural checks alone (dtype, shape, row counts, offsets,
    schema, index size) must catch everything but changes of values the structure cannot reveal."""
    folder = copy_of(pristine, tmp_path)
    _without_checksums(folder)
    DAMAGE[name][kind](folder / name)
    if (name, kind) in ONLY_CHECKSUMS_SEE:
        try:
            _open_and_search(folder, spectra)  # a flipped float: it may go unnoticed, but never a traceback
        except Llm4msError as err:
            _assert_one_line(err, folder)
        return
    with pytest.raises(Llm4msError) as caught:
        _open_and_search(folder, spectra)
    _assert_one_line(caught.value, folder)


#: Damage that leaves every structure intact (values changed, bytes after the array): checksums only.
#: (metadata.parquet: since the prediction_confidence column the middle byte lies in the file's footer, in a field
#: the reader does not check)
ONLY_CHECKSUMS_SEE = {("embeddings.npy", "middle-flip"), ("embeddings.npy", "appended"),
                      ("peaks_intensity.npy", "middle-flip"), ("index.faiss", "middle-flip"),
                      ("metadata.parquet", "middle-flip")}


def test_verify_hashes_everything(pristine, tmp_path):
    from llm4ms.library import verify_library

    folder = copy_of(pristine, tmp_path)
    assert verify_library(folder) == []
    _flip(0.5)(folder / "peaks_mz.npy")
    problems = verify_library(folder)
    assert len(problems) == 1 and "peaks_mz.npy" in problems[0] and "\n" not in problems[0]


def test_cli_reports_a_damaged_library_on_one_line(pristine, tmp_path, capsys):
    from llm4ms.cli import main

    folder = copy_of(pristine, tmp_path)
    _truncate(0.5)(folder / "metadata.parquet")
    assert main(["info", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "metadata.parquet" in err and "--overwrite" in err and "Traceback" not in err


# ---- interrupted builds -----------------------------------------------------------------------------
def test_complete_manifest_without_index_is_repaired_by_rerunning(pristine, spectra, tmp_path):
    """What a kill between "complete" and writing index.faiss used to leave (the old order of writes)."""
    folder = copy_of(pristine, tmp_path)
    (folder / "index.faiss").unlink()
    data = json.loads((folder / "manifest.json").read_text())
    data["index"] = None
    (folder / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(Llm4msError, match="no index"):
        Library.load(folder).search(spectra[:1], encoder=FakeEncoder())
    encoder = FakeEncoder()
    repaired = Library.build(spectra, folder, encoder, chunk_size=16, show_progress=False)
    assert encoder.encoded == 0  # nothing embedded again
    assert repaired.search(spectra[:1], k=1, encoder=FakeEncoder())[0][0].library_index == 0


@pytest.mark.parametrize("damage", [_delete, _truncate(0.5), _other_index])
def test_missing_or_foreign_index_is_rebuilt_by_rerunning_embed(pristine, spectra, tmp_path, damage):
    folder = copy_of(pristine, tmp_path)
    damage(folder / "index.faiss")
    encoder = FakeEncoder()
    repaired = Library.build(spectra, folder, encoder, chunk_size=16, show_progress=False)
    assert encoder.encoded == 0
    assert [h[0].library_index for h in repaired.search(spectra[:3], k=1, encoder=FakeEncoder())] == [0, 1, 2]


def test_index_command_repairs_a_damaged_index(pristine, spectra, tmp_path, capsys):
    from llm4ms.cli import main

    folder = copy_of(pristine, tmp_path)
    _truncate(0.5)(folder / "index.faiss")
    with pytest.raises(Llm4msError, match="llm4ms index"):
        Library.load(folder).search(spectra[:1], encoder=FakeEncoder())
    assert main(["index", str(folder)]) == 0
    assert Library.load(folder).search(spectra[:1], k=1, encoder=FakeEncoder())[0][0].library_index == 0


def test_out_folder_that_is_a_file_is_one_line(spectra, tmp_path):
    target = tmp_path / "taken"
    target.write_text("a file")
    with pytest.raises(Llm4msError, match="is a file"):
        Library.build(spectra, target, FakeEncoder(), show_progress=False)
    with pytest.raises(Llm4msError, match="is a file"):
        Library.load(target)


def test_complete_only_after_the_index_is_written(spectra, tmp_path, monkeypatch):
    import llm4ms.library.store as store

    folder = tmp_path / "lib"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing the index")

    monkeypatch.setattr(store, "write_index", killed)
    with pytest.raises(KeyboardInterrupt):
        Library.build(spectra, folder, FakeEncoder(), chunk_size=16, show_progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["consolidated"] and not manifest["complete"] and manifest["index"] is None
    with pytest.raises(Llm4msError, match="not complete"):
        Library.load(folder)
    monkeypatch.undo()
    encoder = FakeEncoder()
    library = Library.build(spectra, folder, encoder, chunk_size=16, show_progress=False)
    assert encoder.encoded == 0 and library.manifest.complete and (folder / "index.faiss").is_file()
    assert not (folder / "shards").exists()


def test_stale_temporaries_and_unrecorded_shards_are_removed(spectra, tmp_path):
    folder = tmp_path / "lib"
    with pytest.raises(KeyboardInterrupt):
        Library.build(spectra, folder, FakeEncoder(fail_after=2), chunk_size=16, show_progress=False)
    leftovers = [folder / ".embeddings.npy.k2j3h4.tmp", folder / ".manifest.json.abc.tmp",
                 folder / "shards" / ".000002.npz.x1.tmp", folder / "shards" / "000002.npz",
                 folder / "shards" / "000002.jsonl"]
    for path in leftovers:
        path.write_bytes(b"half-written")
    (folder / "notes.txt").write_text("mine")  # not ours: kept
    library = Library.build(spectra, folder, FakeEncoder(), chunk_size=16, show_progress=False)
    assert len(library) == N
    assert not any(p.exists() for p in leftovers)
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == []


def test_atomic_writes_fsync_file_and_folder(tmp_path, monkeypatch):
    from llm4ms.utils import write_json

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_mode), real(fd)))
    write_json(tmp_path / "x.json", {"a": 1})
    import stat

    assert any(stat.S_ISREG(m) for m in synced) and any(stat.S_ISDIR(m) for m in synced)


def test_overwrite_removes_only_library_files(pristine, spectra, tmp_path):
    folder = copy_of(pristine, tmp_path)
    (folder / "notes.txt").write_text("mine")
    Library.build(spectra[:20], folder, FakeEncoder(), overwrite=True, show_progress=False)
    assert len(Library.load(folder)) == 20 and (folder / "notes.txt").read_text() == "mine"


# ---- folders of format 1 (molecular mass column "mass") ------------------------------------------------
def _as_format_1(folder: Path) -> None:
    """Make a library folder look as llm4ms wrote it before the mass column was named ``exact_mass``."""
    import pyarrow.parquet as pq

    from llm4ms.library.manifest import file_record

    path = folder / "metadata.parquet"
    table = pq.read_table(path)
    pq.write_table(table.rename_columns(["mass" if c == "exact_mass" else c for c in table.column_names]), path)
    data = json.loads((folder / "manifest.json").read_text())
    data["format_version"] = 1
    data["files"]["metadata.parquet"] = file_record(path)
    (folder / "manifest.json").write_text(json.dumps(data))


def test_new_folders_name_the_mass_exact_mass(pristine, spectra):
    import pyarrow.parquet as pq

    library = Library.load(pristine)
    assert library.manifest.format_version == 2
    assert "exact_mass" in pq.read_schema(pristine / "metadata.parquet").names
    assert library.metadata_row(3)["exact_mass"] == pytest.approx(spectra[3].molecular_mass)
    assert library.spectrum(3).metadata["exact_mass"] == pytest.approx(spectra[3].molecular_mass)


def test_format_1_folder_is_still_read(pristine, spectra, tmp_path):
    from llm4ms.library import verify_library

    folder = copy_of(pristine, tmp_path)
    _as_format_1(folder)
    library = Library.load(folder)
    assert np.allclose(library.masses, Library.load(pristine).masses)
    assert "mass" not in library.metadata_row(0) and library.metadata_row(0)["exact_mass"] == library.masses[0]
    assert library.spectrum(7).molecular_mass == pytest.approx(spectra[7].molecular_mass)
    hits = library.search(spectra[:1], k=3, encoder=FakeEncoder(), mass_tolerance=0.01)
    assert hits[0][0].library_index == 0 and hits[0][0].mass == pytest.approx(spectra[0].molecular_mass)
    assert verify_library(folder) == []


def test_build_resumed_across_the_mass_rename_keeps_its_masses(spectra, tmp_path):
    folder = tmp_path / "lib"
    with pytest.raises(KeyboardInterrupt):
        Library.build(spectra, folder, FakeEncoder(fail_after=2), chunk_size=16, show_progress=False)
    for path in (folder / "shards").glob("*.jsonl"):  # the shards as format 1 wrote them
        path.write_text(path.read_text().replace('"exact_mass":', '"mass":'))
    data = json.loads((folder / "manifest.json").read_text())
    data["format_version"] = 1
    (folder / "manifest.json").write_text(json.dumps(data))
    library = Library.build(spectra, folder, FakeEncoder(), chunk_size=16, show_progress=False)
    assert library.manifest.format_version == 2
    assert np.allclose(library.masses, [s.molecular_mass for s in spectra])


# ---- one writer at a time -----------------------------------------------------------------------------
HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from llm4ms.library import writer_lock
    with writer_lock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.readline()
""")


class HeldLock:
    """Another process holding the writer lock of `folder` until the block ends."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(folder)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __enter__(self):
        assert self.proc.stdout.readline().strip() == "locked"
        return self

    def __exit__(self, *exc):
        self.proc.communicate("\n", timeout=30)


def test_second_writer_is_refused_with_one_line(pristine, spectra, tmp_path):
    from llm4ms.library import LibraryBusy

    folder = tmp_path / "lib"
    with HeldLock(folder):
        with pytest.raises(LibraryBusy) as caught:
            Library.build(spectra, folder, FakeEncoder(), chunk_size=8, show_progress=False)
        text = str(caught.value)
        assert "\n" not in text and "another llm4ms process" in text and str(folder) in text and "pid" in text
    # the refused run wrote nothing the next one trips over
    library = Library.build(spectra, folder, FakeEncoder(), chunk_size=16, show_progress=False)
    assert len(library) == N

    other = copy_of(pristine, tmp_path / "other")
    with HeldLock(other):
        with pytest.raises(LibraryBusy):
            Library.load(other).build_index("hnsw")
        assert len(Library.load(other)) == N  # readers are never blocked


def test_two_embed_commands_on_one_folder(spectra, tmp_path, capsys):
    from llm4ms.cli import main
    from llm4ms.io import write_msp

    write_msp(spectra[:20], tmp_path / "lib.msp")
    folder = tmp_path / "lib"
    with HeldLock(folder):
        assert main(["embed", "--spectra", str(tmp_path / "lib.msp"), "--out", str(folder), "--no-progress",
                     "--chunk-size", "7"]) == 2
    err = capsys.readouterr().err  # (model loading may draw a progress bar first)
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "another llm4ms process" in errors[0] and "Traceback" not in err
    assert main(["embed", "--spectra", str(tmp_path / "lib.msp"), "--out", str(folder), "--no-progress"]) == 0
    assert len(Library.load(folder)) == 20


def test_writer_lock_is_reentrant_in_one_thread_but_not_across_threads(tmp_path):
    import threading

    from llm4ms.library import LibraryBusy, writer_lock

    seen = []
    with writer_lock(tmp_path):
        with writer_lock(tmp_path):
            pass

        def other():
            try:
                with writer_lock(tmp_path):
                    seen.append("locked")
            except LibraryBusy:
                seen.append("busy")

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == ["busy"]
    with writer_lock(tmp_path):  # released
        pass


# ---- model trust -------------------------------------------------------------------------------------
def _library_naming(pristine: Path, tmp_path: Path, reference: str) -> Path:
    folder = copy_of(pristine, tmp_path)
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data["model"]["reference"] = reference
    path.write_text(json.dumps(data))
    return folder


def test_library_cannot_make_us_download_a_model(pristine, tmp_path, monkeypatch):
    from llm4ms.model import SpectrumEncoder

    calls = []
    fake = FakeEncoder()
    monkeypatch.setattr(SpectrumEncoder, "from_pretrained", classmethod(lambda cls, ref, **kw: calls.append(ref)
                                                                        or fake))
    monkeypatch.delenv("LLM4MS_TRUST_LIBRARY_MODEL", raising=False)
    folder = _library_naming(pristine, tmp_path, "attacker/any-model")
    with pytest.raises(ConfigError) as caught:
        Library.load(folder).encoder()
    text = str(caught.value)
    assert calls == [] and "\n" not in text
    assert "--model attacker/any-model" in text and "LLM4MS_TRUST_LIBRARY_MODEL" in text
    # allowed explicitly: the Python flag, or the environment
    assert Library(folder, trust_model=True).encoder() is fake and calls == ["attacker/any-model"]
    monkeypatch.setenv("LLM4MS_TRUST_LIBRARY_MODEL", "1")
    assert Library.load(folder).encoder() is fake


def test_local_model_folder_that_would_fetch_is_refused(pristine, tmp_path, monkeypatch):
    from llm4ms.model import SpectrumEncoder

    calls = []
    monkeypatch.setattr(SpectrumEncoder, "from_pretrained", classmethod(lambda cls, ref, **kw: calls.append(ref)))
    monkeypatch.delenv("LLM4MS_TRUST_LIBRARY_MODEL", raising=False)
    model = tmp_path / "model"
    model.mkdir()
    (model / "llm4ms_config.json").write_text(json.dumps({"base_model": "attacker/base-never-cached",
                                                          "base_weights": "hub"}))
    with pytest.raises(ConfigError, match="attacker/base-never-cached"):
        Library.load(_library_naming(pristine, tmp_path / "a", str(model))).encoder()
    st = tmp_path / "st"
    st.mkdir()
    (st / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "os.system"}]))
    with pytest.raises(ConfigError, match="os.system"):
        Library.load(_library_naming(pristine, tmp_path / "b", str(st))).encoder()
    assert calls == []


def test_library_naming_a_local_model_folder_loads_it(pristine, tmp_path, monkeypatch):
    from llm4ms.defaults import default_model_path
    from llm4ms.errors import ModelMismatchError

    monkeypatch.delenv("LLM4MS_TRUST_LIBRARY_MODEL", raising=False)
    if default_model_path() is None:
        pytest.skip("this build ships no default model")
    folder = _library_naming(pristine, tmp_path, str(default_model_path()))
    with pytest.raises(ModelMismatchError, match="identity"):  # loaded, then checked against the library
        Library.load(folder).encoder()


def _bundled_model_copy(tmp_path: Path) -> Path:
    from llm4ms.defaults import default_model_path

    source = default_model_path()
    if source is None:
        pytest.skip("this build ships no default model")
    target = tmp_path / "model"
    shutil.copytree(source, target)
    return target


class _Payload:
    """Unpickling this would create a marker file: it must never happen."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickled_weights(model: Path, marker: str) -> None:
    import pickle

    (model / "model.safetensors").unlink()
    with open(model / "pytorch_model.bin", "wb") as handle:
        pickle.dump(_Payload(marker), handle)


def _torch_pickled_weights(model: Path, marker: str) -> None:
    import torch

    (model / "model.safetensors").unlink()
    torch.save({"w": _Payload(marker)}, model / "pytorch_model.bin")


CRAFTED = {
    "garbage-safetensors": lambda m, marker: (m / "model.safetensors").write_bytes(b"\x10" + b"\x00" * 7 + b"{bad"),
    "truncated-safetensors": lambda m, marker: (m / "model.safetensors").write_bytes(
        (m / "model.safetensors").read_bytes()[:5000]),
    "pickle-weights": _pickled_weights,
    "torch-zip-pickle": _torch_pickled_weights,
    "bad-llm4ms-json": lambda m, marker: (m / "llm4ms_config.json").write_text("{not json"),
    "bad-config-json": lambda m, marker: (m / "config.json").write_text("[1, 2"),
    "bad-tokenizer": lambda m, marker: (m / "tokenizer.json").write_bytes(b"\xff\xfe garbage"),
}


@pytest.mark.parametrize("kind", sorted(CRAFTED))
def test_crafted_model_folder_is_one_config_error(tmp_path, kind):
    from llm4ms.defaults import load_encoder

    model = _bundled_model_copy(tmp_path)
    marker = tmp_path / "payload-ran"
    CRAFTED[kind](model, str(marker))
    with pytest.raises(ConfigError) as caught:
        load_encoder(str(model))
    text = str(caught.value)
    assert "\n" not in text and str(model) in text, text
    assert not marker.exists()


def test_crafted_model_named_by_a_library_is_one_config_error(pristine, tmp_path):
    model = _bundled_model_copy(tmp_path)
    CRAFTED["pickle-weights"](model, str(tmp_path / "payload-ran"))
    folder = _library_naming(pristine, tmp_path / "lib", str(model))
    with pytest.raises(ConfigError) as caught:
        Library.load(folder).encoder()
    assert "\n" not in str(caught.value) and not (tmp_path / "payload-ran").exists()


def test_info_verify_reports_a_changed_embedding_file(tmp_path):
    """`llm4ms info --verify` checks the full checksums; a flipped byte mid-file is one clear line, exit 2."""

    from llm4ms.cli import main
    from llm4ms.library import Library
    from _fakes import FakeEncoder  # noqa: E402
    from _training_helpers import synthetic_spectra

    folder = tmp_path / "lib"
    Library.build(synthetic_spectra(6, 2), folder, FakeEncoder(), show_progress=False)
    assert main(["info", str(folder), "--verify"]) == 0
    emb = folder / "embeddings.npy"
    data = bytearray(emb.read_bytes())
    middle = len(data) // 2 + 3
    data[middle] ^= 0x01
    emb.write_bytes(bytes(data))
    assert main(["info", str(folder), "--verify"]) == 2
