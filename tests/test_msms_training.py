"""MS/MS training data (replicate triples, isomer-window negatives, validation sets) and a tiny offline
MS/MS round trip: MGF -> training sets -> supervised recipe -> library -> precursor-window search."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from llm4ms.io import write_mgf
from llm4ms.spectrum import Spectrum
from llm4ms.training.data import record_to_spectrum, spectrum_to_record
from llm4ms.training.msms_pairs import build_msms_triples, msms_validation_sets

ROOT = Path(__file__).resolve().parents[1]


def msms_compounds(n_compounds: int = 12, energies=(10.0, 20.0, 40.0), seed: int = 0,
                   key_offset: int = 0) -> list[Spectrum]:
    """Compounds with distinct fragment sets; each measured at several collision energies (positive mode),
    pairs of compounds share a precursor m/z (isomers); every 4th compound also has a negative-mode spectrum."""
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_compounds):
        precursor = 150.0 + 10 * (c // 2) + 0.0731  # compounds 2k and 2k+1 are isomers
        mz = np.sort(rng.choice(np.arange(40, 140), 10, replace=False)).astype(float) + rng.random(10) * 0.9
        base = rng.random(10) + 0.05
        key = f"MSMSCOMPOUND{c + key_offset:02d}-UHFFFAOYSA-N"
        for e, energy in enumerate(energies):
            inten = base * rng.lognormal(0.0, 0.15, 10) * np.exp(-energy / 80 * (mz > 90))
            out.append(Spectrum(mz, inten / inten.max(), {
                "inchikey": key, "name": f"compound {c}", "id": f"C{c}-E{e}", "precursor_mz": precursor,
                "precursor_type": "[M+H]+", "ion_mode": "positive", "collision_energy": energy,
                "formula": f"C{8 + c // 2}H10O2"}))
        if c % 4 == 0:
            out.append(Spectrum(mz[:6] + 0.5, base[:6] / base[:6].max(), {
                "inchikey": key, "name": f"compound {c}", "id": f"C{c}-N", "precursor_mz": precursor - 2.0146,
                "precursor_type": "[M-H]-", "ion_mode": "negative", "collision_energy": 20.0}))
    return out


def test_triples_keep_ion_modes_apart_prefer_other_energy_and_mine_isomers():
    spectra = msms_compounds()
    triples = build_msms_triples(spectra, num_negatives=1, precursor_tolerance_da=0.01, seed=0)
    positive_mode = [s for s in spectra if s.ion_mode == "positive"]
    assert len(triples) == len(positive_mode)  # negative-mode spectra are single per compound: no anchors
    for t in triples:
        anchor, positive, (negative,) = t["anchor"], t["positive"], t["negatives"]
        assert positive.inchikey14 == anchor.inchikey14 and positive.id != anchor.id
        assert positive.get("collision_energy") != anchor.get("collision_energy")
        assert positive.ion_mode == negative.ion_mode == anchor.ion_mode
        assert negative.inchikey14 != anchor.inchikey14
        assert abs(negative.precursor_mz - anchor.precursor_mz) < 0.01  # the isomer in the window


def test_negatives_fall_back_outside_the_window_and_records_keep_precursor():
    spectra = [s for s in msms_compounds() if s.ion_mode == "positive"]
    spectra = [s.copy(metadata={**s.metadata, "precursor_mz": 100.0 + i}) for i, s in enumerate(spectra)]
    triples = build_msms_triples(spectra, num_negatives=2, precursor_tolerance_da=0.01)
    assert all(len(t["negatives"]) == 2 for t in triples)  # nothing in any window: nearest other compounds
    back = record_to_spectrum(spectrum_to_record(spectra[0]))
    assert back.precursor_mz == spectra[0].precursor_mz and back.ion_mode == "positive"


def test_validation_sets_one_query_per_compound_and_mode():
    spectra = msms_compounds(8)
    queries, library = msms_validation_sets(spectra, seed=1)
    assert len(queries) == 8  # negative-mode spectra are alone in their mode: never queries
    assert len({(q.inchikey14, q.ion_mode) for q in queries}) == 8
    assert len(queries) + len(library) == len(spectra)
    assert not {q.id for q in queries} & {s.id for s in library}


def test_tiny_msms_round_trip_train_embed_search(tmp_path):
    sets = tmp_path / "sets"
    sets.mkdir()
    write_mgf(msms_compounds(16, seed=2), sets / "train.mgf")
    validation = msms_compounds(6, seed=3, key_offset=50)
    write_mgf(validation, sets / "validation.mgf")
    done = subprocess.run([sys.executable, str(ROOT / "data_prep" / "build_msms_training_sets.py"), str(sets),
                           str(tmp_path / "training")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "triples" in done.stdout
    training = tmp_path / "training"
    config = {"model_name_or_path": "peak:32x1", "textualizer": "msms-peaks", "max_mz": 300,
              "intermediate_size": 64, "use_lora": False, "pooling": "mean",
              "train_file": str(training / "supervised_triples.jsonl"),
              "validation_queries": str(training / "validation_queries.jsonl"),
              "validation_library": str(training / "validation_library.jsonl"),
              "output_dir": str(tmp_path / "run"), "max_steps": 8, "per_device_train_batch_size": 16,
              "learning_rate": 0.01, "logging_steps": 1, "save_steps": 8, "batch_sampler": "no_duplicates",
              "seed": 0}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    sys.path.insert(0, str(ROOT / "recipes"))
    try:
        assert importlib.import_module("supervised").main([str(tmp_path / "cfg.json")]) == 0
    finally:
        sys.path.remove(str(ROOT / "recipes"))
    from llm4ms.library import Library
    from llm4ms.model import SpectrumEncoder

    encoder = SpectrumEncoder.from_pretrained(tmp_path / "run" / "final")
    assert encoder.textualizer.preset_name == "msms-peaks"
    library = Library.build(validation, tmp_path / "lib", encoder, show_progress=False)
    query = validation[0]
    hits = library.search([query], k=5, encoder=encoder, precursor_tolerance="10ppm", ion_mode="positive")[0]
    # the window holds the compound's own 3 spectra and its isomer's 3: nothing else, all positive [M+H]+
    assert len(hits) == 5 and all(abs(h.precursor_mz - query.precursor_mz) < 1e-3 for h in hits)
    assert hits[0].library_index == 0 and {h.adduct for h in hits} == {"[M+H]+"}

    # the fusion weight fit on the validation split is stored with the model and used by search
    write_mgf(msms_compounds(4, seed=4, key_offset=80), sets / "test.mgf")
    sys.path.insert(0, str(ROOT / "data_prep"))
    try:
        fit = importlib.import_module("fit_msms_ranking")
        assert fit.main([str(tmp_path / "run" / "final"), "--sets", str(sets), "--depth", "20",
                         "--out-json", str(tmp_path / "fit.json"), "--write"]) == 0
    finally:
        sys.path.remove(str(ROOT / "data_prep"))
    grid = json.loads((tmp_path / "fit.json").read_text())
    assert set(grid["recall@1"]) == {f"{c} {f:g}" for c in fit.CLASSICS for f in fit.FUSIONS}
    assert grid["counts"]["positive"]["queries"] == 6 and grid["recall@1"]["entropy_hr 0"]["window"] == 100.0
    fitted = SpectrumEncoder.from_pretrained(tmp_path / "run" / "final")
    assert fitted.config["ranking"] == grid["chosen"] and fitted.config["ranking"]["prior"]["weight"] == 0
