"""`EIPredictor`: SMILES in, nominal-mass EI spectra out (the in-silico library builder).

A predictor folder holds `config.json` (featuriser, network shape, post-processing, training notes),
`model.safetensors` (fp16 to keep the shipped copy small) and a README model card. `from_pretrained()`
without a path loads the copy bundled in `llm4ms/resources/predictor`.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import numpy as np
import torch

from llm4ms.errors import ConfigError
from llm4ms.predict.featurize import Featurized, FeaturizerSettings, featurize_many
from llm4ms.predict.isotopes import apply_envelope, isotope_envelope
from llm4ms.predict.model import ModelConfig, NEIMSEnsemble, NEIMSModel, build_model
from llm4ms.spectrum import CONFIDENCE_KEY, Spectrum
from llm4ms.utils import atomic_path, write_json

if TYPE_CHECKING:
    from llm4ms.predict.references import BlendSettings, ReferenceSpectra

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "resources" / "predictor"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 2  # 1: single NEIMS MLP only; 2 adds arch / n_experts / n_members / extra features
EMPTY_PREDICTION = "empty_prediction"
#: config.json "model_type" of each kind of network; folders written before v2 say "neims-mlp".
MODEL_TYPES = ("neims-mlp", "neims-resmlp", "neims-ensemble")
#: metadata key of the per-spectrum confidence an ensemble writes (canonical key of `llm4ms.io.keys`; the MSP
#: line is `PredictionConfidence: 0.87`, read back as a float)


def model_type(config: ModelConfig) -> str:
    if config.n_members > 1:
        return "neims-ensemble"
    return "neims-mlp" if config.arch == "mlp" and config.n_experts == 0 else "neims-resmlp"


@dataclass
class OutputSettings:
    """How raw bins become a library spectrum (NIST style: base peak 999, no dust, bounded size)."""

    scale: float = 999.0
    min_relative: float = 0.002
    max_peaks: int = 150
    decimals: int = 2
    #: "" (off, as saved before v2), "fit" or "anchor": overwrite m/z M..M+5 with the exact isotope
    #: envelope of the formula (see llm4ms.predict.isotopes.apply_envelope)
    isotope_envelope: str = ""
    #: write the ensemble's agreement (mean cosine of each member to the mean, 0..1) as PredictionConfidence
    confidence: bool = True


@dataclass
class PredictionReport:
    """Why each input did or did not give a spectrum (`reasons[i] is None` means predicted)."""

    reasons: list[Optional[str]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def n_input(self) -> int:
        return len(self.reasons)

    @property
    def n_predicted(self) -> int:
        return sum(r is None for r in self.reasons)

    @property
    def skipped(self) -> Counter:
        return Counter(r for r in self.reasons if r is not None)

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items()))
        skipped = sum(self.skipped.values())
        return (f"read {self.n_input}, predicted {self.n_predicted}, skipped {skipped}"
                + (f" ({parts})" if parts else ""))


class EIPredictor:
    """NEIMS-style EI spectrum predictor with its featuriser and output settings."""

    def __init__(self, model: NEIMSModel | NEIMSEnsemble, featurizer: FeaturizerSettings,
                 output: OutputSettings = OutputSettings(), info: Optional[dict] = None) -> None:
        if model.config.n_features != featurizer.n_features:
            raise ConfigError(f"model expects {model.config.n_features} features, featuriser gives "
                              f"{featurizer.n_features}")
        self.model = model.eval()
        self.featurizer = featurizer
        self.output = output
        self.info = dict(info or {})
        #: measured spectra of reference compounds mixed into each prediction (`use_references`); None = off
        self.references: Optional["ReferenceSpectra"] = None

    def use_references(self, source: str | Path | Iterable[Spectrum], settings: Optional["BlendSettings"] = None,
                       n_jobs: int = 1) -> "ReferenceSpectra":
        """Mix the measured spectra of the most similar compounds of `source` (a spectrum file or spectra)
        into every prediction.

        The predictor's identity gains the references' checksum, so libraries (and resumed batch runs)
        made with references are never confused with plain ones. See `llm4ms.predict.references`.
        """
        from llm4ms.predict.references import BlendSettings, ReferenceSpectra
        from llm4ms.io import read_spectra

        spectra = read_spectra(source) if isinstance(source, (str, Path)) else source
        try:
            self.references = ReferenceSpectra.from_spectra(spectra, self.featurizer, self.model.config.max_mz,
                                                            settings or BlendSettings(), n_jobs=n_jobs)
        except ConfigError as err:
            raise ConfigError(f"{source if isinstance(source, (str, Path)) else 'references'}: {err}") from None
        return self.references

    # ---- construction --------------------------------------------------------------------------
    @classmethod
    def new(cls, featurizer: FeaturizerSettings = FeaturizerSettings(), **model_kwargs) -> "EIPredictor":
        """An untrained predictor (random weights): for training scripts and tests."""
        config = ModelConfig(n_features=featurizer.n_features, **model_kwargs)
        return cls(build_model(config), featurizer)

    @classmethod
    def from_pretrained(cls, path: Optional[str | Path] = None, device: str = "cpu") -> "EIPredictor":
        """Load a saved predictor folder; None loads the bundled weights."""
        from safetensors.torch import load_file

        folder = Path(path) if path is not None else BUNDLED_DIR
        cfg_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        if not cfg_path.is_file() or not weights_path.is_file():
            hint = " (train one with data_prep/train_predictor.py)" if path is None else ""
            raise ConfigError(f"{folder}: no predictor here, need {CONFIG_NAME} and {WEIGHTS_NAME}{hint}")
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
            kind = cfg.get("model_type", "neims-mlp")
            if kind not in MODEL_TYPES:
                raise ConfigError(f"{cfg_path}: unknown predictor model_type {kind!r} (this llm4ms knows "
                                  f"{', '.join(MODEL_TYPES)}; a newer version may have written it)")
            model_cfg = ModelConfig.from_dict(cfg["model"])
            featurizer = FeaturizerSettings.from_dict(cfg["featurizer"])
            output = OutputSettings(**cfg.get("output", {}))
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"{cfg_path}: not a predictor config ({err})") from None
        model = build_model(model_cfg)
        state = {k: v.float() for k, v in load_file(str(weights_path), device=device).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(f"{weights_path}: weights do not fit the config (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
        predictor = cls(model.to(device), featurizer, output, cfg.get("info"))
        predictor.info.setdefault("identity", folder_identity(folder))
        return predictor

    def save_pretrained(self, path: str | Path, dtype: torch.dtype = torch.float16,
                        readme: Optional[str] = None) -> Path:
        """Write config.json + model.safetensors (fp16 by default) + README.md, each atomically."""
        from safetensors.torch import save_file

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(folder / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "llm4ms-ei-predictor"})
        os.chmod(folder / WEIGHTS_NAME, 0o644)  # safetensors leaves its file private (0600)
        info = {k: v for k, v in self.info.items() if k != "identity"}
        write_json(folder / CONFIG_NAME, {
            "format_version": FORMAT_VERSION,
            "model_type": model_type(self.model.config),
            "model": self.model.config.to_dict(),
            "featurizer": self.featurizer.to_dict(),
            "output": asdict(self.output),
            "info": info,
        })
        if readme is not None:
            with atomic_path(folder / "README.md") as tmp:
                tmp.write_text(readme, encoding="utf-8")
        return folder

    @property
    def identity(self) -> str:
        base = str(self.info.get("identity", "untrained"))
        return base if self.references is None else f"{base}+ref-{self.references.identity}"

    # ---- prediction ------------------------------------------------------------------------------
    def predict(self, smiles: Sequence[str], ids: Optional[Sequence[Optional[str]]] = None,
                names: Optional[Sequence[Optional[str]]] = None, batch_size: int = 256,
                n_jobs: int = 1) -> list[Optional[Spectrum]]:
        """One spectrum per SMILES, in order; None where the molecule was refused."""
        return self.predict_with_report(smiles, ids, names, batch_size, n_jobs)[0]

    def predict_with_report(self, smiles: Sequence[str], ids: Optional[Sequence[Optional[str]]] = None,
                            names: Optional[Sequence[Optional[str]]] = None, batch_size: int = 256,
                            n_jobs: int = 1) -> tuple[list[Optional[Spectrum]], PredictionReport]:
        """Like `predict`, plus a report with the refusal reason of each input."""
        smiles = list(smiles)
        for label, seq in (("ids", ids), ("names", names)):
            if seq is not None and len(seq) != len(smiles):
                raise ValueError(f"{label} has {len(seq)} entries for {len(smiles)} SMILES")
        items = featurize_many(smiles, self.featurizer, n_jobs=n_jobs)
        report = PredictionReport(reasons=[it.reason for it in items], details=[it.detail for it in items])
        spectra: list[Optional[Spectrum]] = [None] * len(items)
        accepted = [i for i, it in enumerate(items) if it.ok]
        for start in range(0, len(accepted), max(1, batch_size)):
            chunk = accepted[start:start + batch_size]
            bins, confidence = self.predict_bins_with_confidence([items[i] for i in chunk])
            for n, (row, i) in enumerate(zip(bins, chunk)):
                meta = self._metadata(items[i], ids[i] if ids else None, names[i] if names else None)
                if confidence is not None:
                    meta[CONFIDENCE_KEY] = round(float(confidence[n]), 3)
                spectrum = self._to_spectrum(row, meta)
                if spectrum is None:
                    report.reasons[i], report.details[i] = EMPTY_PREDICTION, "the model predicted no peak"
                spectra[i] = spectrum
        return spectra, report

    def predict_bins(self, items: Sequence[Featurized]) -> np.ndarray:
        """Raw relative intensities (n, max_mz + 1), linear scale, for accepted molecules."""
        return self.predict_bins_with_confidence(items)[0]

    @torch.inference_mode()
    def predict_bins_with_confidence(self, items: Sequence[Featurized]) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """`predict_bins` plus, for an ensemble (and `output.confidence`), one confidence per molecule:
        the mean cosine (sqrt intensities) of each member's prediction to the ensemble mean; None otherwise."""
        if not items:
            return np.zeros((0, self.model.config.n_bins), dtype=np.float32), None
        device = next(self.model.parameters()).device
        x = torch.from_numpy(np.stack([it.features for it in items])).to(device)
        m = torch.tensor([it.nominal_mass for it in items], dtype=torch.long, device=device)
        confidence = None
        if isinstance(self.model, NEIMSEnsemble):
            members = self.model.forward_members(x, m).float()
            out_t = members.mean(dim=0)
            if self.output.confidence:
                cos = torch.nn.functional.cosine_similarity(members, out_t.unsqueeze(0), dim=-1, eps=1e-8)
                confidence = cos.mean(dim=0).cpu().numpy()
        else:
            out_t = self.model(x, m).float()
        out = out_t.cpu().numpy()  # the network predicts sqrt intensities
        if self.references is not None:
            out = self.references.blend(out, x.cpu().numpy(), m.cpu().numpy(), self.model.config.mass_margin)
        out = out ** 2
        if self.output.isotope_envelope:
            length = self.model.config.mass_margin + 1
            for row, it in zip(out, items):
                env = isotope_envelope(it.metadata.get("formula", ""), length)
                apply_envelope(row, it.nominal_mass, env, self.output.isotope_envelope)
        return out, confidence

    def _metadata(self, item: Featurized, given_id: Optional[str], given_name: Optional[str]) -> dict:
        meta = dict(item.metadata)
        meta["id"] = given_id or None
        meta["name"] = given_name or given_id or meta["smiles"]
        meta["ionization"] = "EI"
        meta["instrument_type"] = "in-silico"
        meta["comment"] = f"predicted by llm4ms EI predictor {self.identity}"
        return meta

    def _to_spectrum(self, row: np.ndarray, metadata: dict) -> Optional[Spectrum]:
        top = float(row.max()) if row.size else 0.0
        if not np.isfinite(top) or top <= 0:
            return None
        rel = row.astype(np.float64) / top
        idx = np.flatnonzero(rel >= self.output.min_relative)
        if idx.size > self.output.max_peaks:
            order = np.lexsort((idx, -rel[idx]))[: self.output.max_peaks]
            idx = np.sort(idx[order])
        inten = np.round(rel[idx] * self.output.scale, self.output.decimals)
        return Spectrum(mz=idx.astype(np.float64), intensities=inten.astype(np.float64), metadata=metadata)


def folder_identity(path: Optional[str | Path] = None) -> str:
    """The identity `from_pretrained(path)` would give, from the files alone (no network is built)."""
    folder = Path(path) if path is not None else BUNDLED_DIR
    weights, cfg = folder / WEIGHTS_NAME, folder / CONFIG_NAME
    if not weights.is_file() or not cfg.is_file():
        raise ConfigError(f"{folder}: no predictor here, need {CONFIG_NAME} and {WEIGHTS_NAME}")
    return _file_digest(weights, cfg)


def _file_digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:12]
