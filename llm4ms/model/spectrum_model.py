"""`SpectrumModel`: llm4ms's typed face of a sentence-transformers spectrum model folder (format 2).

The folder is a plain sentence-transformers folder (``modules.json``: `SpectrumTransformer` ->
`IntensityPooling` -> `Normalize`), so ``SentenceTransformer(folder).encode(texts)`` works without llm4ms
knowing about it. This wrapper adds only what sentence-transformers lacks: spectra in (through the
textualizer the folder owns), float32 unit vectors out, a stable identity hash (a library refuses queries
embedded by another model) and the card data in ``llm4ms_config.json``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum
from llm4ms.text import Textualizer

log = logging.getLogger(__name__)

CONFIG_NAME = "llm4ms_config.json"
FORMAT_VERSION = 2
TextOrSpectrum = Union[str, Spectrum]


class SpectrumModel:
    """Spectrum -> text -> `SentenceTransformer` -> L2-normalised float32 vector."""

    format_version = FORMAT_VERSION

    def __init__(self, st_model, config: Optional[dict[str, Any]] = None) -> None:
        self.st = st_model
        self.config: dict[str, Any] = dict(config or {})
        self.config.setdefault("training", {})
        self.config.setdefault("scores", {})
        self._identity: Optional[str] = None
        self.name_or_path: Optional[str] = None

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_parts(cls, hf_folder: str | Path, textualizer: Textualizer, token_weights: Sequence[float],
                   max_length: int = 64, info: Optional[dict[str, Any]] = None,
                   device: Optional[str] = None) -> "SpectrumModel":
        """Assemble the module pipeline from a causal-LM folder (``is_causal: false``) and pooling weights."""
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.base.modules import Normalize

        from llm4ms.model.modules import IntensityPooling, SpectrumTransformer

        transformer = SpectrumTransformer(str(hf_folder), max_seq_length=max_length, textualizer=textualizer)
        pooling = IntensityPooling(transformer.get_embedding_dimension(), len(token_weights), list(token_weights))
        st = SentenceTransformer(modules=[transformer, pooling, Normalize()], device=device or "cpu")
        return cls(st, config=dict(info or {}))

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: Optional[str] = None) -> "SpectrumModel":
        folder = Path(folder)
        config_path = folder / CONFIG_NAME
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        try:
            st = _load_sentence_transformer(folder, device)
        except (OSError, ValueError, KeyError, ImportError) as err:
            raise ConfigError(f"{folder}: cannot load the sentence-transformers model "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err
        model = cls(st, config=config)
        if not hasattr(st[0], "textualizer"):
            raise ConfigError(f"{folder}: its first module is not an llm4ms SpectrumTransformer")
        model.name_or_path = str(folder.resolve())
        return model

    # ---- properties -----------------------------------------------------------------------------
    @property
    def textualizer(self) -> Textualizer:
        return self.st[0].textualizer

    @property
    def tokenizer(self):
        return self.st[0].tokenizer

    @property
    def dim(self) -> int:
        return int(self.st.get_embedding_dimension())

    @property
    def max_length(self) -> int:
        return int(self.st.max_seq_length)

    @property
    def identity(self) -> str:
        """sha256 of the module layout, the textualizer and every weight tensor; equal after save/load."""
        if self._identity is None:
            from llm4ms.model.encoder import update_with_tensors

            digest = hashlib.sha256()
            layout = [type(m).__name__ for m in self.st]
            digest.update(json.dumps({"format": FORMAT_VERSION, "modules": layout,
                                      "textualizer": self.textualizer.to_dict(),
                                      "max_length": self.max_length}, sort_keys=True).encode())
            update_with_tensors(digest, self.st.state_dict())
            self._identity = digest.hexdigest()
        return self._identity

    def invalidate_identity(self) -> None:
        self._identity = None

    # ---- embedding ------------------------------------------------------------------------------
    def texts(self, items: Iterable[TextOrSpectrum]) -> list[str]:
        """Texts as the model reads them: strings pass through, spectra go through the textualizer."""
        textualize = self.textualizer
        return [item if isinstance(item, str) else textualize(item) for item in items]

    def encode(self, spectra: Iterable[TextOrSpectrum], batch_size: int = 64,
               show_progress: Optional[bool] = None) -> np.ndarray:
        """(n, dim) float32 L2-normalised embeddings, in input order."""
        texts = self.texts(spectra)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if show_progress is None:
            show_progress = len(texts) > 20 * batch_size
        vectors = self.st.encode(texts, batch_size=batch_size, show_progress_bar=bool(show_progress),
                                 convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    # ---- saving ---------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | Path) -> Path:
        """Write the folder atomically: the sentence-transformers modules, llm4ms_config.json, a card."""
        from llm4ms.model.card import render_model_card
        from llm4ms.model.encoder import replace_dir
        from llm4ms.utils import package_versions

        out = Path(out_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            self.st.save(str(tmp))
            config = dict(self.config)
            config.update(format_version=FORMAT_VERSION, textualizer=self.textualizer.to_dict(),
                          pooling="intensity", max_length=self.max_length, dim=self.dim,
                          versions=package_versions(("llm4ms", "sentence-transformers", "transformers", "torch")),
                          identity=self.identity)
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=str) + "\n", encoding="utf-8")
            (tmp / "README.md").write_text(render_model_card(config), encoding="utf-8")
            replace_dir(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.name_or_path = str(out.resolve())
        return out


def _load_sentence_transformer(folder: Path, device: Optional[str]):
    """Load with our module classes named explicitly, never with code from the folder.

    sentence-transformers asks for ``trust_remote_code=True`` before importing any module class outside its
    own namespace, and with that flag it would also import Python files shipped inside the folder. We map
    our two class names to the installed classes instead (its loader for exactly this case), so a crafted
    folder can never run code; without that loader we refuse folders that contain Python files.
    """
    from sentence_transformers import SentenceTransformer

    from llm4ms.model.modules import IntensityPooling, SpectrumTransformer

    classes = {f"{cls.__module__}.{cls.__name__}": cls for cls in (SpectrumTransformer, IntensityPooling)}
    loader = getattr(SentenceTransformer, "_load_with_module_classes", None)
    if loader is not None:
        return loader(str(folder), classes, device=device, local_files_only=True)
    if any(folder.rglob("*.py")):
        raise ConfigError(f"{folder}: a model folder must not contain Python files")
    return SentenceTransformer(str(folder), device=device, local_files_only=True, trust_remote_code=True)


def is_spectrum_model_folder(folder: str | os.PathLike) -> bool:
    """True for a format-2 folder (a sentence-transformers folder whose first module is ours)."""
    modules = Path(folder) / "modules.json"
    if not modules.is_file():
        return False
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(entries) and str(entries[0].get("type", "")).startswith("llm4ms.")
