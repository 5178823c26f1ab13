"""`SpectrumEncoder`: llm4ms's typed face of a sentence-transformers spectrum model folder.

A model folder is a plain sentence-transformers folder (``modules.json``: `SpectrumTransformer` -> pooling
(`IntensityPooling`, or sentence-transformers' `Pooling`) -> `Normalize`), so
``SentenceTransformer(folder, trust_remote_code=True).encode(texts)`` gives the same vectors with no export
step. This wrapper adds only what sentence-transformers lacks: spectra in (through the textualizer the
folder owns), float32 unit vectors out, LoRA stacking between training stages, a stable identity hash (a
library refuses queries embedded by another model), the card data in ``llm4ms_config.json`` and Hub I/O.

Folders written before this format (``format_version`` 1: a causal-LM folder + ``adapter/``) are converted
once by ``llm4ms convert`` (`llm4ms.model.convert`).
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
from llm4ms.model.bidirectional import make_bidirectional
from llm4ms.model.weights import (LoraSettings, four_bit_config, has_lora, merge_lora_in_place, replace_dir,
                                  resolve_device, resolve_dtype, update_with_tensors)
from llm4ms.spectrum import Spectrum
from llm4ms.text import DEFAULT_PRESET, Textualizer

log = logging.getLogger(__name__)

CONFIG_NAME = "llm4ms_config.json"
FORMAT_VERSION = 2
#: pooling name -> sentence-transformers `Pooling` mode ("intensity" is our `IntensityPooling`)
POOLING_MODES = {"mean": "mean", "weighted_mean": "weightedmean", "last_token": "lasttoken",
                 "first_token": "cls", "intensity": None}
TextOrSpectrum = Union[str, Spectrum]


class SpectrumEncoder:
    """Spectrum -> text -> `SentenceTransformer` -> L2-normalised float32 vector."""

    format_version = FORMAT_VERSION

    def __init__(self, st_model, config: Optional[dict[str, Any]] = None) -> None:
        self.st = st_model
        self.config: dict[str, Any] = dict(config or {})
        self.config.setdefault("training", {})
        self.config.setdefault("scores", {})
        self.config.setdefault("merged_adapters", 0)
        self._identity: Optional[str] = None
        #: where `from_pretrained` loaded this model from (absolute folder or Hub id); None if unsaved
        self.name_or_path: Optional[str] = None

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_base(cls, base: str | os.PathLike, textualizer: Textualizer | str | dict = DEFAULT_PRESET,
                  pooling: str = "mean", max_length: int = 512, torch_dtype=None, load_in_4bit: bool = False,
                  device: Optional[str] = None, gguf_file: Optional[str] = None,
                  token_weights: Optional[Sequence[float]] = None) -> "SpectrumEncoder":
        """Any Hugging Face causal LM (folder or Hub id) made bidirectional, with pooling and normalisation.

        ``pooling="intensity"`` needs `token_weights` (one per vocabulary entry; peak-token models).
        """
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

        from llm4ms.model.modules import IntensityPooling, SpectrumTransformer

        if pooling not in POOLING_MODES:
            raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLING_MODES)}")
        if pooling == "intensity" and token_weights is None:
            raise ConfigError("pooling 'intensity' needs per-token weights (a peak-token vocabulary)")
        dtype = resolve_dtype(torch_dtype)
        model_kwargs: dict[str, Any] = {"dtype": dtype}
        gguf = {"gguf_file": gguf_file} if gguf_file else {}
        if load_in_4bit:
            model_kwargs.update(quantization_config=four_bit_config(dtype), device_map="auto")
        try:
            transformer = SpectrumTransformer(
                str(base), textualizer=as_textualizer(textualizer), max_seq_length=max_length,
                model_kwargs={**model_kwargs, **gguf}, config_kwargs=gguf or None,
                processor_kwargs={"padding_side": "right", **gguf})
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot load base model {base}: {str(err).splitlines()[0]}") from err
        make_bidirectional(transformer.model)  # config.is_causal = False, saved with the folder
        tokenizer = transformer.tokenizer
        if tokenizer.pad_token is None:  # Llama-3-style tokenizers ship without one
            tokenizer.pad_token = tokenizer.eos_token
        dim = transformer.get_embedding_dimension()
        if pooling == "intensity":
            pool = IntensityPooling(dim, len(token_weights), list(token_weights))
        else:
            pool = Pooling(dim, POOLING_MODES[pooling])
        st = SentenceTransformer(modules=[transformer, pool, Normalize()],
                                 device=None if load_in_4bit else resolve_device(device))
        info = {"base_model": str(base), "torch_dtype": str(dtype).replace("torch.", ""), "gguf_file": gguf_file,
                "load_in_4bit": load_in_4bit}
        return cls(st, config=info)

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | os.PathLike, device: Optional[str] = None,
                        torch_dtype=None) -> "SpectrumEncoder":
        """Load a model folder (local path, or a Hub repo id fetched with `huggingface_hub`)."""
        folder = resolve_folder(path_or_hub_id)
        config_path = folder / CONFIG_NAME
        config = _read_config(config_path)
        if not is_model_folder(folder):
            if config.get("format_version") == 1:
                raise ConfigError(f"{folder}: an llm4ms format-1 model folder; convert it once with "
                                  f"`llm4ms convert --model {folder} --out NEW_FOLDER`")
            raise ConfigError(f"{folder}: not an llm4ms model folder (no modules.json with an llm4ms "
                              "SpectrumTransformer); use SpectrumEncoder.from_base for a language model")
        model_kwargs = {"dtype": resolve_dtype(torch_dtype)} if torch_dtype is not None else {}
        try:
            st = _load_sentence_transformer(folder, resolve_device(device), model_kwargs)
        except (OSError, ValueError, KeyError, ImportError) as err:
            raise ConfigError(f"{folder}: cannot load the sentence-transformers model "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err
        encoder = cls(st, config=config)
        local = Path(path_or_hub_id).expanduser()
        encoder.name_or_path = str(local.resolve()) if local.exists() else str(path_or_hub_id)
        return encoder

    # ---- properties -----------------------------------------------------------------------------
    @property
    def transformer(self):
        """The `SpectrumTransformer` module (first module)."""
        return self.st[0]

    @property
    def body(self):
        """The Hugging Face model whose hidden states are pooled."""
        return self.st[0].model

    @property
    def textualizer(self) -> Textualizer:
        return self.st[0].textualizer

    @property
    def tokenizer(self):
        return self.st[0].tokenizer

    @property
    def pooling(self) -> str:
        module = self.st[1]
        mode = getattr(module, "pooling_mode", None)
        if mode is None:
            return "intensity"
        modes = mode if isinstance(mode, (list, tuple)) else [mode]
        names = {v: k for k, v in POOLING_MODES.items() if v}
        return "+".join(names.get(str(m), str(m)) for m in modes)

    @property
    def dim(self) -> int:
        return int(self.st.get_embedding_dimension())

    @property
    def max_length(self) -> int:
        return int(self.st.max_seq_length)

    @property
    def device(self):
        return self.st.device

    @property
    def identity(self) -> str:
        """sha256 of the module layout, the textualizer and every weight tensor; equal after save/load."""
        if self._identity is None:
            digest = hashlib.sha256()
            layout = [type(m).__name__ for m in self.st]
            core = {"format": FORMAT_VERSION, "modules": layout, "textualizer": self.textualizer.to_dict(),
                    "max_length": self.max_length}
            if self.pooling != "intensity":  # the mode of a sentence-transformers Pooling is config, not weights
                core["pooling"] = self.pooling
            digest.update(json.dumps(core, sort_keys=True).encode())
            update_with_tensors(digest, self.st.state_dict())
            self._identity = digest.hexdigest()
        return self._identity

    def invalidate_identity(self) -> None:
        """Call after changing weights in place (training); `identity` is recomputed on next use."""
        self._identity = None

    # ---- adapters -------------------------------------------------------------------------------
    def add_lora(self, lora: LoraSettings) -> None:
        """Attach a fresh trainable LoRA adapter (an existing one is merged first: stacking).

        The body is wrapped in a peft `PeftModel` (sentence-transformers' own ``add_adapter`` goes through
        transformers' peft integration, which needs a newer peft than installs here).
        """
        from peft import get_peft_model

        self.merge_lora()
        body = self.body
        if getattr(body, "is_loaded_in_4bit", False):
            from peft import prepare_model_for_kbit_training

            body = prepare_model_for_kbit_training(body, use_gradient_checkpointing=False)
        self.st[0].model = get_peft_model(body, lora.to_peft())
        self.config["lora"] = lora.to_dict()
        self._identity = None

    def merge_lora(self) -> None:
        """Fold the LoRA adapter into the weights; the next stage starts from these."""
        if has_lora(self.body):
            if getattr(self.body, "is_loaded_in_4bit", False):
                raise ConfigError("cannot merge a LoRA adapter into 4-bit weights; save the adapter instead")
            self.st[0].model = merge_lora_in_place(self.body)
            self.config["merged_adapters"] = int(self.config.get("merged_adapters") or 0) + 1
            self.config["lora"] = None
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
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if show_progress is None:
            show_progress = len(texts) > 20 * batch_size
        vectors = self.st.encode(texts, batch_size=batch_size, show_progress_bar=bool(show_progress),
                                 convert_to_numpy=True, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    # ---- saving ---------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | os.PathLike) -> Path:
        """Write the folder atomically: the sentence-transformers modules, llm4ms_config.json, a card.

        A LoRA adapter is merged first (the folder holds plain weights), except on a 4-bit base, where
        sentence-transformers saves the adapter and records the base by name.
        """
        from llm4ms.model.card import render_model_card
        from llm4ms.utils import package_versions

        if not getattr(self.body, "is_loaded_in_4bit", False):
            self.merge_lora()
        out = Path(out_dir)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            self.st.save(str(tmp))
            config = dict(self.config)
            config.update(format_version=FORMAT_VERSION, textualizer=self.textualizer.to_dict(),
                          pooling=self.pooling, max_length=self.max_length, dim=self.dim,
                          versions=package_versions(("llm4ms", "sentence-transformers", "transformers", "torch",
                                                     "peft")),
                          identity=self.identity)
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=str) + "\n", encoding="utf-8")
            (tmp / "README.md").write_text(render_model_card(config), encoding="utf-8")
            replace_dir(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.name_or_path = str(out.resolve())
        return out

    def push_to_hub(self, repo_id: str, private: bool = False, token: Optional[str] = None) -> str:
        """Save to a temporary folder and upload it as a Hub model repo; returns the repo URL."""
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
            raise ConfigError("push_to_hub: HF_HUB_OFFLINE is set; unset it to upload")
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "model")
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                              commit_message="Upload llm4ms spectrum encoder")
        return str(url)


# ---- helpers ----------------------------------------------------------------------------------------
def as_textualizer(value: Textualizer | str | dict) -> Textualizer:
    """A `Textualizer` from itself, a preset name or its `to_dict()`."""
    if isinstance(value, Textualizer):
        return value
    if isinstance(value, str):
        return Textualizer.from_preset(value)
    return Textualizer.from_dict(value)


def is_model_folder(folder: str | os.PathLike) -> bool:
    """True for an llm4ms model folder (a sentence-transformers folder whose first module is ours)."""
    modules = Path(folder) / "modules.json"
    if not modules.is_file():
        return False
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(entries) and str(entries[0].get("type", "")).startswith("llm4ms.")


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: unreadable ({err})") from err
    return config if isinstance(config, dict) else {}


def _load_sentence_transformer(folder: Path, device: Optional[str], model_kwargs: dict[str, Any]):
    """Load with our module classes named explicitly, never with code from the folder.

    sentence-transformers asks for ``trust_remote_code=True`` before importing any module class outside its
    own namespace, and with that flag it would also import Python files shipped inside the folder. We map
    our class names to the installed classes instead (its loader for exactly this case), so a crafted
    folder can never run code; without that loader we refuse folders that contain Python files.
    """
    from sentence_transformers import SentenceTransformer

    from llm4ms.model.modules import IntensityPooling, SpectrumTransformer

    classes = {f"{cls.__module__}.{cls.__name__}": cls for cls in (SpectrumTransformer, IntensityPooling)}
    kwargs = {"device": device, "local_files_only": True, "model_kwargs": model_kwargs or None}
    loader = getattr(SentenceTransformer, "_load_with_module_classes", None)
    if loader is not None:
        return loader(str(folder), classes, **kwargs)
    if any(folder.rglob("*.py")):
        raise ConfigError(f"{folder}: a model folder must not contain Python files")
    return SentenceTransformer(str(folder), trust_remote_code=True, **kwargs)


def resolve_folder(path_or_hub_id: str | os.PathLike) -> Path:
    """A local folder as is; ``owner/name`` fetched from the Hugging Face Hub (one clear line when it fails)."""
    path = Path(path_or_hub_id).expanduser()
    if path.exists():
        return path
    text = str(path_or_hub_id)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise ConfigError(f"{text}: no such model folder (and not a Hub id like owner/name)")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=text, repo_type="model"))
    except Exception as err:  # offline, missing repo, auth: one clear line
        raise ConfigError(f"{text}: not a local folder and cannot fetch it from the Hub "
                          f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err
