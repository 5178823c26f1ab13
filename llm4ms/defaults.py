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
MSMS_MODEL_DIR = RESOURCES / "msms_model"
DEFAULT_LIBRARY_SPECTRA = RESOURCES / "library"
#: Short names of the models shipped inside the package: ``--model ei`` (the default) or ``--model msms``.
BUNDLED_MODELS = {"ei": DEFAULT_MODEL_DIR, "msms": MSMS_MODEL_DIR}


def cache_dir() -> Path:
    """User cache for built artefacts (default library embeddings): $LLM4MS_CACHE or ~/.cache/llm4ms."""
    root = os.environ.get("LLM4MS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "llm4ms")
    return Path(root)


def default_model_path() -> Optional[Path]:
    """The model folder shipped inside the package, if this build ships one."""
    return DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "llm4ms_config.json").exists() else None


def load_encoder(reference: Optional[str] = None, device: Optional[str] = None) -> Any:
    """Load `reference` (folder, Hub id, or a bundled model's name: ``ei``, ``msms``), or the bundled default
    (EI) model when it is None. A folder of that name in the working directory wins over the bundled name."""
    if reference is None:
        path = default_model_path()
        if path is None:
            raise ConfigError("no --model given and this installation ships no default model")
        reference = str(path)
    elif reference in BUNDLED_MODELS and not Path(reference).exists():
        path = BUNDLED_MODELS[reference]
        if not (path / "llm4ms_config.json").exists():
            raise ConfigError(f"--model {reference}: this installation does not ship the {reference} model")
        reference = str(path)
    return _load_model(reference, device)


#: Set to 1 to let a library's manifest name a model that is not a local folder (a Hub id to download).
TRUST_LIBRARY_MODEL_ENV = "LLM4MS_TRUST_LIBRARY_MODEL"


def trusted_library_models() -> bool:
    """Whether $LLM4MS_TRUST_LIBRARY_MODEL allows loading any model a library's manifest names."""
    return os.environ.get(TRUST_LIBRARY_MODEL_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def load_library_model(reference: str, library: Any, trusted: bool = False, device: Optional[str] = None) -> Any:
    """Load the model a library's manifest names, as `Library.encoder` does when no --model is given.

    A library folder is data someone may have handed over: unless `trusted`, the model must be a folder on
    this machine that fetches nothing from the Hugging Face Hub (its base model and adapters local too) and
    whose sentence-transformers modules are llm4ms' or sentence-transformers' own. Otherwise one
    `ConfigError` line says how to allow it (--model REF, or $LLM4MS_TRUST_LIBRARY_MODEL=1).
    """
    allow = (f"pass --model {reference} to load it anyway (it may be downloaded from the Hugging Face Hub) or "
             f"set {TRUST_LIBRARY_MODEL_ENV}=1")
    path = Path(str(reference)).expanduser()
    if not trusted:
        if not path.is_dir():
            raise ConfigError(f"{library}: the library names the model {reference!r}, which is not a folder on "
                              f"this machine; llm4ms loads a model a library names only from a local folder: {allow}")
        remote = _remote_parts(path)
        if remote:
            raise ConfigError(f"{library}: the library's model folder {path} refers to {remote}, which is not on "
                              f"this machine: {allow}")
    return _load_model(str(path) if path.is_dir() else str(reference), device)


def _remote_parts(folder: Path) -> Optional[str]:
    """What a local model folder would fetch or import from elsewhere (None if nothing)."""
    import json

    def read(name: str) -> Any:
        try:
            return json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent or broken: the loader says so in one line

    modules = read("modules.json")
    if isinstance(modules, list):  # a sentence-transformers folder: weights are inside; its modules must be ours
        for entry in modules:
            kind = entry.get("type") if isinstance(entry, dict) else None
            if not (isinstance(kind, str) and kind.startswith(("llm4ms.", "sentence_transformers."))):
                return f"module type {kind!r} (only llm4ms and sentence-transformers modules are loaded)"
        return None
    config = read("llm4ms_config.json")
    if isinstance(config, dict):  # format 1: the base model is loaded by name unless its weights are included
        base = config.get("base_model")
        if config.get("base_weights") != "included" and isinstance(base, str) and not _on_this_machine(base):
            return f"base model {base!r}"
        for adapter in config.get("merged_adapters") or []:
            if isinstance(adapter, str) and not _on_this_machine(adapter):
                return f"adapter {adapter!r}"
    return None


def _on_this_machine(reference: str) -> bool:
    """A local folder, or a Hub repository already in the local Hugging Face cache (nothing to download)."""
    if Path(reference).expanduser().is_dir():
        return True
    if reference.count("/") != 1 or reference.startswith((".", "/")):
        return False
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(reference, "config.json"), str)
    except Exception:  # pragma: no cover - an odd name or cache layout: not known to be here
        return False


def _load_model(reference: str, device: Optional[str] = None) -> Any:
    """`SpectrumEncoder.from_pretrained`, with anything a broken or crafted folder raises (unpickling refused,
    bad safetensors, bad JSON, missing files) turned into one `ConfigError` line."""
    from llm4ms.errors import Llm4msError
    from llm4ms.model import SpectrumEncoder

    try:
        return SpectrumEncoder.from_pretrained(reference, device=device)
    except Llm4msError:
        raise
    except Exception as err:
        import pickle
        import re

        if isinstance(err, pickle.UnpicklingError):
            raise ConfigError(f"{reference}: its weights are a pickle file, which is refused (unpickling can run "
                              "code); use a model folder with model.safetensors") from err
        text = " ".join(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(err)).split())
        text = text if len(text) <= 200 else text[:197] + "..."
        raise ConfigError(f"{reference}: cannot load this model ({type(err).__name__}: {text or 'no details'}); "
                          "is it a complete llm4ms model folder?") from err


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


def bundled_predictor_identity() -> str:
    """Identity of the bundled predictor ("none" when this installation ships none)."""
    from llm4ms.predict.predictor import folder_identity

    try:
        return folder_identity()
    except ConfigError:
        return "none"


def predicted_candidates(show_progress: Optional[bool] = None) -> Optional[Path]:
    """Predict the bundled candidate structures once with the bundled predictor; cached as MSP."""
    candidates = default_candidate_structures()
    if candidates is None:
        return None
    from llm4ms.predict import EIPredictor
    from llm4ms.predict.batch import count_rows, predict_file

    predictor = EIPredictor.from_pretrained()
    out = cache_dir() / "default_library" / f"insilico_{str(predictor.identity)[:12]}.msp"
    if not out.exists():
        n = count_rows(candidates)
        log.info("first use of the bundled library: predicting EI spectra for %s candidate structures once "
                 "into %s", f"{n:,}" if n is not None else "its", out)
        predict_file(predictor, candidates, out, smiles_column="smiles", id_column="id", name_column="name",
                     progress=show_progress)
    return out


#: part of the cached default library's folder name; bumped when the stored metadata gains a column the search
#: reads (``-m2``: the predictor's confidence, read by the learned re-ranker), so an older cache is rebuilt
CACHE_LAYOUT = "-m2"


def default_library(encoder: Any = None, show_progress: Optional[bool] = None):
    """The bundled library embedded with the default model, built once into the cache and reused."""
    from llm4ms.library import Library

    sources = default_library_sources()
    if not sources and default_candidate_structures() is None:
        raise ConfigError("no --library given and this installation ships no default library")
    encoder = encoder or load_encoder(None)
    # keyed by the encoder AND the predictor that made the in-silico part: a new bundled predictor must not
    # reuse spectra embedded from the old one's predictions
    predictor_key = f"-{bundled_predictor_identity()[:8]}" if default_candidate_structures() is not None else ""
    folder = cache_dir() / "default_library" / (str(encoder.identity)[:16] + predictor_key + CACHE_LAYOUT)
    if (folder / "manifest.json").exists():
        try:
            return Library.load(folder)
        except Exception as err:  # an interrupted build resumes below
            log.info("default library cache incomplete (%s); continuing the build", err)
    predicted = predicted_candidates(show_progress)
    if predicted is not None:
        sources = sources + [predicted]
    from llm4ms.io.formats import estimate_record_count
    from llm4ms.progress import Progress

    counts = [estimate_record_count(p) for p in sources]
    total = sum(counts) if None not in counts else None
    log.info("embedding the bundled library%s once into %s; later runs reuse it",
             f" ({total:,} spectra)" if total is not None else "", folder)
    with Progress(total, desc="embed", unit="spectra", enabled=show_progress) as bar:
        return Library.build(_chain_sources(sources), folder, _CountingEncoder(encoder, bar), show_progress=False,
                             model_reference=getattr(encoder, "name_or_path", None))


def open_library(library: Optional[str], model: Optional[str]) -> tuple[Any, Any]:
    """Resolve the --library / --model pair every searching command takes.

    A given library uses its own recorded model unless --model overrides it (then returned to be checked);
    without a library, the bundled library embedded with --model or the default model.
    """
    from llm4ms.library import Library

    if library:
        return Library.load(library), (load_encoder(model) if model else None)
    encoder = load_encoder(model)
    return default_library(encoder), encoder


def _chain_sources(paths: list[Path]):
    from llm4ms.io import read_spectra

    for path in paths:
        yield from read_spectra(path)


class _CountingEncoder:
    """The encoder, counting embedded spectra into a progress display (everything else is passed through)."""

    def __init__(self, encoder: Any, progress: Any) -> None:
        self._encoder, self._progress = encoder, progress

    def encode(self, spectra, *args, **kwargs):
        spectra = list(spectra)
        vectors = self._encoder.encode(spectra, *args, **kwargs)
        self._progress.update(len(spectra))
        return vectors

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)
