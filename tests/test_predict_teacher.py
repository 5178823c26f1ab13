"""Graph teacher and distillation: graphs from RDKit, the teacher trains and reloads, its labels reach the
student only for TRAIN structures without a measured spectrum, weighted in the loss."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric")

from llm4ms.data.split import compound_split  # noqa: E402
from llm4ms.predict.featurize import FeaturizerSettings, featurize_many  # noqa: E402
from llm4ms.predict.model import LossSettings, spectrum_loss  # noqa: E402
from llm4ms.predict.teacher import (ATOM_DIM, BOND_DIM, collate, graphs_for, load_teacher, mol_graph,  # noqa: E402
                                    new_teacher, save_teacher)
from llm4ms.predict.training import (CompoundTable, PseudoLabels, TrainSettings, evaluate_loss,  # noqa: E402
                                     load_pseudo_labels, train)

ROOT = Path(__file__).resolve().parents[1]
FEAT = FeaturizerSettings(n_bits=64, extra=("chem",))
# small molecules of both splits: the teacher's loop needs train and validation rows
SMILES = ["CCO", "CCCO", "CCCCO", "CC(C)O", "CCN", "CCCN", "CC(=O)O", "CCC(=O)O", "c1ccccc1", "Cc1ccccc1",
          "CCc1ccccc1", "Oc1ccccc1", "Nc1ccccc1", "CC(C)=O", "CCC(C)=O", "CCOCC", "CCCl", "CCBr", "CCCCC",
          "CCCCCC", "C1CCCCC1", "CC1CCCCC1", "O=Cc1ccccc1", "COc1ccccc1", "CCS", "CSC", "CC#N", "C=CC=O"]


def test_mol_graph_has_atoms_and_both_bond_directions():
    g = mol_graph("CCO")
    assert g.x.shape == (3, ATOM_DIM) and g.edge_index.shape == (2, 4) and g.edge_attr.shape == (4, BOND_DIM)
    assert sorted(map(tuple, g.edge_index.t().tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    benzene = mol_graph("c1ccccc1")
    assert float(benzene.edge_attr[:, 3].min()) == 1.0  # every bond aromatic
    assert mol_graph("not a smiles") is None
    with pytest.raises(ValueError, match="cannot parse"):
        graphs_for(["CCO", "C1CC"])


def _table() -> CompoundTable:
    items = featurize_many(SMILES, FEAT)
    keys = [i.metadata["inchikey"][:14] for i in items]
    masses = np.asarray([i.nominal_mass for i in items], dtype=np.int64)
    y = np.zeros((len(items), 201), dtype=np.float32)
    rng = np.random.default_rng(0)
    for row, (m, item) in enumerate(zip(masses, items)):  # learnable: M, M-15 and a ring-dependent peak
        y[row, m] = 1.0
        y[row, m - 15] = 0.6
        y[row, 77 if "c1" in item.metadata["smiles"] else 43] = 0.8 + 0.1 * rng.random()
    splits = np.array(["train"] * 20 + ["validation"] * 8)
    return CompoundTable(keys=keys, smiles=[i.metadata["smiles"] for i in items], splits=splits,
                         features=np.stack([i.features for i in items]), masses=masses, targets=y)


def test_teacher_trains_saves_and_reloads(tmp_path):
    table = _table()
    graphs = graphs_for(table.smiles)
    torch.manual_seed(0)
    teacher = new_teacher(FEAT, hidden=32, layers=2, dropout=0.0, head_hidden=(64,), head_dropout=0.0, max_mz=200)
    settings = TrainSettings(epochs=30, batch_size=10, lr=3e-3, patience=30)
    val = table.splits == "validation"
    val_graphs = [g for g, v in zip(graphs, val) if v]
    before = evaluate_loss(teacher, table.features[val], table.masses[val], table.targets[val], settings,
                           val_graphs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(teacher, table, settings, graphs=graphs)
    finally:
        torch.set_num_threads(threads)
    assert result["best_val_loss"] < 0.7 * before
    save_teacher(teacher, FEAT, tmp_path / "t", {"note": "test"})
    again, featurizer, info = load_teacher(tmp_path / "t")
    assert featurizer == FEAT and info == {"note": "test"}
    idx = np.arange(len(graphs))
    with torch.inference_mode():
        a = teacher(torch.from_numpy(table.features), torch.from_numpy(table.masses), collate(graphs, idx))
        b = again(torch.from_numpy(table.features), torch.from_numpy(table.masses), collate(graphs, idx))
    assert torch.allclose(a, b)
    above = torch.arange(a.shape[1]).unsqueeze(0) > torch.from_numpy(table.masses).unsqueeze(1) + 5
    assert float(a[above].abs().max()) == 0.0  # nothing above M + margin, as in the student


def test_weighted_loss_ignores_zero_weight_rows():
    target = torch.zeros(2, 50)
    target[:, 10] = 1.0
    good, bad = target[:1].clone(), torch.zeros(1, 50)
    bad[0, 30] = 1.0
    pred = torch.cat([good, bad])
    s = LossSettings()
    assert float(spectrum_loss(pred, target, s, weights=torch.tensor([1.0, 0.0]))) < 1e-6
    assert float(spectrum_loss(pred, target, s, weights=torch.tensor([1.0, 1.0]))) == pytest.approx(
        float(spectrum_loss(pred, target, s)))


def _part(path: Path, keys: list[str], featurizer: FeaturizerSettings, n_features: int) -> None:
    n = len(keys)
    np.savez(path, keys=np.asarray(keys), smiles=np.asarray(["C"] * n),
             features=np.ones((n, n_features), np.float16), masses=np.arange(n) + 50,
             targets=np.ones((n, 201), np.float16), featurizer=np.asarray(json.dumps(featurizer.to_dict())))


def _keys_of(split: str, n: int) -> list[str]:
    out, i = [], 0
    while len(out) < n:
        key = f"KEY{i:011d}"
        if compound_split(key) == split:
            out.append(key)
        i += 1
    return out


def test_pseudo_labels_keep_only_new_train_structures(tmp_path):
    train_keys, val_keys = _keys_of("train", 4), _keys_of("validation", 2)
    folder = tmp_path / "labels"
    folder.mkdir()
    _part(folder / "part-0000.npz", train_keys[:3] + val_keys, FEAT, FEAT.n_features)
    _part(folder / "part-0001.npz", [train_keys[0], train_keys[3]], FEAT, FEAT.n_features)  # one repeated
    pseudo = load_pseudo_labels([folder], FEAT, weight=0.3, measured_keys={train_keys[1]})
    assert len(pseudo.features) == 3 and pseudo.weight == 0.3  # train 0, 2, 3: no measured, no validation
    assert pseudo.features.shape[1] == FEAT.n_features and pseudo.masses.dtype == np.int64
    assert len(load_pseudo_labels([folder], FEAT, max_rows=2).features) == 2
    other = FeaturizerSettings(n_bits=32)
    _part(tmp_path / "other.npz", train_keys, other, other.n_features)
    with pytest.raises(ValueError, match="another featuriser"):
        load_pseudo_labels([tmp_path / "other.npz"], FEAT)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="no teacher-labelled parts"):
        load_pseudo_labels([tmp_path / "nothing"], FEAT)


def test_student_trains_with_pseudo_rows():
    table = _table()
    from llm4ms.predict.predictor import EIPredictor

    torch.manual_seed(0)
    student = EIPredictor.new(FEAT, hidden=(64,), max_mz=200, dropout=0.0)
    train_rows = table.splits == "train"
    pseudo = PseudoLabels(table.features[train_rows], table.masses[train_rows], table.targets[train_rows], 0.5)
    result = train(student, table, TrainSettings(epochs=3, batch_size=10, patience=5), pseudo=pseudo)
    assert result["n_pseudo"] == 20 and result["n_train"] == 20
    with pytest.raises(ValueError, match="for the student"):
        train(student, table, TrainSettings(epochs=1), graphs=graphs_for(table.smiles), pseudo=pseudo)


def test_label_step_writes_resumable_parts(tmp_path):
    table = _table()
    torch.manual_seed(0)
    teacher = new_teacher(FEAT, hidden=16, layers=1, head_hidden=(32,))
    save_teacher(teacher, FEAT, tmp_path / "t")
    smiles = tmp_path / "s.csv"
    smiles.write_text("id,SMILES\n" + "".join(f"{i},{s}\n" for i, s in enumerate(SMILES + ["CCO", "bad("])))
    cmd = [sys.executable, str(ROOT / "data_prep" / "train_teacher.py"), "label", "--teacher", str(tmp_path / "t"),
           "--sources", "--smiles-file", str(smiles), "--out", str(tmp_path / "labels"), "--part-size", "10"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    parts = sorted((tmp_path / "labels").glob("part-*.npz"))
    expected = {k for k in table.keys if compound_split(k) == "train"}
    got = set()
    for part in parts:
        with np.load(part) as data:
            got |= set(data["keys"].tolist())
            assert float(data["targets"].max()) == pytest.approx(1.0, abs=1e-3)
    assert got == expected and len(got) > 5
    mtimes = [p.stat().st_mtime_ns for p in parts]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "(0 new this run)" in again.stdout
    assert [p.stat().st_mtime_ns for p in parts] == mtimes
    missing = subprocess.run(cmd[:4] + [str(tmp_path / "no-teacher")] + cmd[5:], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode != 0 and "not a teacher or predictor folder" in missing.stderr
    assert "Traceback" not in missing.stderr
