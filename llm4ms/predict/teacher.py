"""The graph teacher of the NExtIMS-style predictor: a message-passing network over the molecule plus the
student's fingerprint features, feeding the same forward / reverse / gate heads (`NEIMSModel`).

Why a teacher at all: a few thousand measured compounds are too few for the fast fingerprint MLP to learn
everything a structure implies. A heavier model that sees bonds and neighbourhoods directly is trained on
the same TRAIN compounds, then labels structures that have no measured spectrum (MassBank MS/MS structures,
FastEI's NEIMS molecules, MOSES), and the student learns from those labels too (`training.PseudoLabels`).
The student stays the shipped, fast predictor; the teacher is a training tool.

The graph part stands on PyTorch Geometric (`GINEConv`: GIN with bond features, and its pooling
functions); only the RDKit -> graph conversion and the wiring to the NEIMS heads are written here.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from llm4ms.predict.featurize import ALLOWED_ELEMENTS, FeaturizerSettings
from llm4ms.predict.model import ModelConfig, NEIMSModel
from llm4ms.utils import atomic_path, write_json

_HYBRIDISATIONS = ("SP", "SP2", "SP3", "SP3D")
_BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
#: atom feature layout: element (+ other), degree 0-5, total H 0-4, charge -1/0/+1, aromatic, in ring,
#: smallest ring size 3-8, hybridisation
ATOM_DIM = len(ALLOWED_ELEMENTS) + 1 + 6 + 5 + 3 + 2 + 6 + len(_HYBRIDISATIONS) + 1
#: bond feature layout: type, conjugated, in ring
BOND_DIM = len(_BOND_TYPES) + 2


def _one_hot(value, choices: Sequence, extra: bool = False) -> list[float]:
    out = [0.0] * (len(choices) + int(extra))
    if value in choices:
        out[list(choices).index(value)] = 1.0
    elif extra:
        out[-1] = 1.0
    return out


def _atom_features(atom) -> list[float]:
    ring = [float(atom.IsInRingSize(k)) for k in range(3, 9)]
    return (_one_hot(atom.GetSymbol(), ALLOWED_ELEMENTS, extra=True)
            + _one_hot(min(atom.GetDegree(), 5), range(6))
            + _one_hot(min(atom.GetTotalNumHs(), 4), range(5))
            + _one_hot(max(-1, min(1, atom.GetFormalCharge())), (-1, 0, 1))
            + [float(atom.GetIsAromatic()), float(atom.IsInRing())] + ring
            + _one_hot(str(atom.GetHybridization()), _HYBRIDISATIONS, extra=True))


def mol_graph(smiles: str):
    """A `torch_geometric.data.Data` (x, edge_index both directions, edge_attr) or None if RDKit refuses."""
    from rdkit import Chem, RDLogger
    from torch_geometric.data import Data

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles or "")
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    x = torch.tensor([_atom_features(a) for a in mol.GetAtoms()], dtype=torch.float32)
    src, dst, attrs = [], [], []
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        feat = _one_hot(str(b.GetBondType()), _BOND_TYPES) + [float(b.GetIsConjugated()), float(b.IsInRing())]
        src += [i, j]
        dst += [j, i]
        attrs += [feat, feat]
    edge_index = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
    edge_attr = torch.tensor(attrs, dtype=torch.float32).reshape(-1, BOND_DIM)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr)


@dataclass
class TeacherConfig:
    """Shape of the teacher; `heads` is the NEIMS network that reads [fingerprint features, graph vector]."""

    n_features: int
    hidden: int = 256
    layers: int = 4
    dropout: float = 0.2
    heads: dict = field(default_factory=dict)  # ModelConfig.to_dict() of the NEIMS part

    @property
    def graph_dim(self) -> int:
        return 3 * self.hidden  # sum, mean and max pooling

    def to_dict(self) -> dict:
        return asdict(self)


class GraphEncoder(nn.Module):
    """Atom embedding -> `layers` residual GINE convolutions -> [sum, mean, max] pooled, layer-normed."""

    def __init__(self, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        from torch_geometric.nn import GINEConv

        self.atom_in = nn.Linear(ATOM_DIM, hidden)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.convs = nn.ModuleList(
            GINEConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)),
                     edge_dim=BOND_DIM) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.out_norm = nn.LayerNorm(3 * hidden)

    def forward(self, graphs) -> torch.Tensor:
        from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

        h = self.atom_in(graphs.x)
        for norm, conv in zip(self.norms, self.convs):
            h = h + self.dropout(torch.relu(conv(norm(h), graphs.edge_index, graphs.edge_attr)))
        pooled = torch.cat([global_add_pool(h, graphs.batch) / 10.0, global_mean_pool(h, graphs.batch),
                            global_max_pool(h, graphs.batch)], dim=1)
        return self.out_norm(pooled)


class GraphTeacher(nn.Module):
    """NEIMS heads over [student features, graph encoding]: forward(features, mol_mass, graphs)."""

    def __init__(self, config: TeacherConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = GraphEncoder(config.hidden, config.layers, config.dropout)
        heads = ModelConfig.from_dict({**config.heads, "n_features": config.n_features + config.graph_dim})
        self.neims = NEIMSModel(heads)

    def forward(self, features: torch.Tensor, mol_mass: torch.Tensor, graphs) -> torch.Tensor:
        return self.neims(torch.cat([features, self.encoder(graphs)], dim=1), mol_mass)


def new_teacher(featurizer: FeaturizerSettings, hidden: int = 256, layers: int = 4, dropout: float = 0.2,
                head_hidden: tuple[int, ...] = (512, 512), head_dropout: float = 0.5,
                mass_margin: int = 5, max_mz: int = 1000) -> GraphTeacher:
    heads = ModelConfig(n_features=0, max_mz=max_mz, hidden=tuple(head_hidden), dropout=head_dropout,
                        mass_margin=mass_margin).to_dict()
    return GraphTeacher(TeacherConfig(n_features=featurizer.n_features, hidden=hidden, layers=layers,
                                      dropout=dropout, heads=heads))


def save_teacher(model: GraphTeacher, featurizer: FeaturizerSettings, folder: str | Path,
                 info: Optional[dict] = None) -> Path:
    """config.json (teacher shape + featuriser + info) and model.safetensors (fp32), atomically."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "llm4ms-ei-teacher"})
    write_json(folder / "config.json", {"model_type": "neims-graph-teacher", "teacher": model.config.to_dict(),
                                        "featurizer": featurizer.to_dict(), "info": info or {}})
    return folder


def load_teacher(folder: str | Path) -> tuple[GraphTeacher, FeaturizerSettings, dict]:
    from safetensors.torch import load_file

    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    t = dict(cfg["teacher"])
    model = GraphTeacher(TeacherConfig(**t))
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.eval(), FeaturizerSettings.from_dict(cfg["featurizer"]), cfg.get("info", {})


def graphs_for(smiles: Sequence[str]) -> list:
    """Graphs in input order; raises on a SMILES RDKit refuses (callers pass featurised, accepted ones)."""
    out = []
    for smi in smiles:
        g = mol_graph(smi)
        if g is None:
            raise ValueError(f"RDKit cannot parse {smi!r}")
        out.append(g)
    return out


def collate(graphs: Sequence, idx: np.ndarray):
    from torch_geometric.data import Batch

    return Batch.from_data_list([graphs[i] for i in idx])


class Labeller:
    """A graph teacher or a predictor folder behind one call: raw sqrt-intensity bins for featurised rows.

    Both the label step and the teacher benchmark read "a teacher or a predictor" (an ensemble teacher
    mixes them); this is the one place that tells them apart and batches graphs.
    """

    def __init__(self, model: nn.Module, featurizer: FeaturizerSettings, uses_graphs: bool) -> None:
        self.model, self.featurizer, self.uses_graphs = model.eval(), featurizer, uses_graphs

    @classmethod
    def load(cls, folder: str | Path) -> "Labeller":
        from llm4ms.errors import ConfigError
        from llm4ms.predict.predictor import EIPredictor

        folder = Path(folder)
        cfg_path = folder / "config.json"
        if not cfg_path.is_file():
            raise ConfigError(f"{folder}: not a teacher or predictor folder (no config.json)")
        if json.loads(cfg_path.read_text(encoding="utf-8")).get("model_type") == "neims-graph-teacher":
            model, featurizer, _ = load_teacher(folder)
            return cls(model, featurizer, True)
        predictor = EIPredictor.from_pretrained(folder)
        return cls(predictor.model, predictor.featurizer, False)

    def predict(self, x: np.ndarray, m: np.ndarray, graphs: Optional[Sequence] = None,
                batch_size: int = 256) -> torch.Tensor:
        """(rows, bins); `graphs` (one per row) are needed only by a graph teacher."""
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                idx = np.arange(start, min(start + batch_size, len(x)))
                xb, mb = torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(m[idx])
                out.append(self.model(xb, mb, collate(graphs, idx)) if self.uses_graphs else self.model(xb, mb))
        return torch.cat(out)
