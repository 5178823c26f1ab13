"""Where the bundled default model and library live, and how a missing --model/--library is resolved."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

from llm4ms.errors import ConfigError

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).parent / "resources"
DEFAULT_MODEL_DIR = RESOURCES / "model"
DEFAULT_LIBRARY_SPECTRA = RESOURCES / "library"


def cache_dir() -> Path:
    """User cache for built artefacts (default library embeddings): $LLM4MS_CACHE or ~/.cache/llm4ms."""
    root = os.environ.get("LLM4MS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "llm4ms")
    return Path(root)


def default_model_path() -> Optional[Path]:
    """The model folder shipped inside the package, if this build ships one."""
    return DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "llm4ms_config.json").exists() else None


def load_encoder(reference: Optional[str] = None, device: Optional[str] = None) -> Any:
    """Load `reference` (folder or Hub id), or the bundled default model when it is None."""
    from llm4ms.model import SpectrumEncoder

    if reference is None:
        path = default_model_path()
        if path is None:
            raise ConfigError("no --model given and this installation ships no default model")
        reference = str(path)
    return SpectrumEncoder.from_pretrained(reference, device=device)


def default_library_sources() -> list[Path]:
    """The redistributable measured spectra files of the bundled default library."""
    if not DEFAULT_LIBRARY_SPECTRA.exists():
        return []
    return sorted(p for p in DEFAULT_LIBRARY_SPECTRA.iterdir()
                  if p.name.lower().endswith((".msp", ".msp.gz", ".mgf", ".mgf.gz")))


def default_candidate_structures() -> Optional[Path]:
    """Candidate structures whose spectra are predicted at first use (see resources/library/README.md)."""
    path = DEFAULT_LIBRARY_SPECTRA / "candidates_insilico.csv.gz"
    return path if path.exists() else None


def predicted_candidates(show_progress: Optional[bool] = None) -> Optional[Path]:
    """Predict the bundled candidate structures once with the bundled predictor; cached as MSP."""
    candidates = default_candidate_structures()
    if candidates is None:
        return None
    from llm4ms.predict import EIPredictor
    from llm4ms.predict.batch import predict_file

    predictor = EIPredictor.from_pretrained()
    out = cache_dir() / "default_library" / f"insilico_{str(predictor.identity)[:12]}.msp"
    if not out.exists():
        log.warning("predicting EI spectra of %s once into %s", candidates.name, out)
        predict_file(predictor, candidates, out, smiles_column="smiles", id_column="id", name_column="name",
                     progress=show_progress)
    return out


def default_library(encoder: Any = None, show_progress: Optional[bool] = None):
    """The bundled library embedded with the default model, built once into the cache and reused."""
    from llm4ms.search import Library

    sources = default_library_sources()
    if not sources and default_candidate_structures() is None:
        raise ConfigError("no --library given and this installation ships no default library")
    encoder = encoder or load_encoder(None)
    folder = cache_dir() / "default_library" / str(encoder.identity)[:16]
    if (folder / "manifest.json").exists():
        try:
            return Library.load(folder)
        except Exception as err:  # an interrupted build resumes below
            log.info("default library cache incomplete (%s); continuing the build", err)
    predicted = predicted_candidates(show_progress)
    if predicted is not None:
        sources = sources + [predicted]
    log.warning("embedding the default library once into %s", folder)
    return Library.build(_chain_sources(sources), folder, encoder, show_progress=show_progress,
                         model_reference=getattr(encoder, "name_or_path", None))


def open_library(library: Optional[str], model: Optional[str]) -> tuple[Any, Any]:
    """Resolve the --library / --model pair every searching command takes.

    A given library uses its own recorded model unless --model overrides it (then returned to be checked);
    without a library, the bundled library embedded with --model or the default model.
    """
    from llm4ms.search import Library

    if library:
        return Library.load(library), (load_encoder(model) if model else None)
    encoder = load_encoder(model)
    return default_library(encoder), encoder


def _chain_sources(paths: list[Path]):
    from llm4ms.io import read_spectra

    for path in paths:
        yield from read_spectra(path)
