"""`SpectrumEncoder`: a bidirectional causal LM (+ LoRA) that turns spectra into unit vectors.

The causal-LM class is kept (MNTP training needs its LM head); embeddings pool the hidden states of the
model body, so inference never computes vocabulary logits.

A saved folder is itself a Hugging Face model folder (config.json + safetensors at the top, unless the
base is only referenced by name) plus ``adapter/`` (peft), the tokenizer, ``llm4ms_config.json`` and a
README.md model card.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import torch

from llm4ms.errors import ConfigError
from llm4ms.model.bidirectional import make_bidirectional
from llm4ms.model.pooling import POOLING_MODES, pool
from llm4ms.spectrum import Spectrum
from llm4ms.text import Textualizer

logger = logging.getLogger(__name__)

CONFIG_NAME = "llm4ms_config.json"
ADAPTER_DIR = "adapter"
FORMAT_VERSION = 1
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
#: Config keys that describe what the model computes; they (and the weights) make up `identity`.
IDENTITY_KEYS = ("base_model", "merged_adapters", "pooling", "max_length", "textualizer", "dim", "padding_side")


@dataclass
class LoraSettings:
    """LoRA hyper-parameters (LLM4MS used r=16, alpha=32, dropout 0.05 on all projections)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES

    def to_peft(self):
        from peft import LoraConfig, TaskType

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), task_type=TaskType.CAUSAL_LM)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data


TextOrSpectrum = Union[str, Spectrum]


class SpectrumEncoder:
    """Spectrum -> text -> tokens -> pooled hidden state -> L2-normalised float32 vector."""

    def __init__(self, model, tokenizer, textualizer: Textualizer, pooling: str = "mean",
                 max_length: int = 512, config: Optional[dict[str, Any]] = None) -> None:
        if pooling not in POOLING_MODES:
            raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLING_MODES)}")
        self.model = model
        self.tokenizer = tokenizer
        self.textualizer = textualizer
        self.pooling = pooling
        self.max_length = int(max_length)
        if tokenizer.pad_token is None:  # Llama-3-style tokenizers ship without one
            tokenizer.pad_token = tokenizer.eos_token
        self.config: dict[str, Any] = dict(config or {})
        self.config.update(pooling=pooling, max_length=self.max_length, textualizer=textualizer.to_dict(),
                           dim=self.dim, padding_side=tokenizer.padding_side)
        self.config.setdefault("merged_adapters", [])
        self.config.setdefault("training", {})
        self.config.setdefault("scores", {})
        self._identity: Optional[str] = None
        #: where `from_pretrained` loaded this model from (absolute folder or Hub id); None if unsaved
        self.name_or_path: Optional[str] = None

    # ---- construction ---------------------------------------------------------------------------
    @classmethod
    def from_base(cls, base: str | os.PathLike, textualizer: Textualizer | str | dict = "llm4ms-v2",
                  pooling: str = "mean", lora: Optional[LoraSettings] = None,
                  merge_adapters: Sequence[str | os.PathLike] = (), torch_dtype=None,
                  load_in_4bit: bool = False, max_length: int = 512, gguf_file: Optional[str] = None,
                  device: Optional[str] = None, padding_side: Optional[str] = None) -> "SpectrumEncoder":
        """Load a causal LM (Hub id or folder), make it bidirectional, merge adapters, add LoRA."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = resolve_dtype(torch_dtype)
        kwargs: dict[str, Any] = {"dtype": dtype}
        if gguf_file:
            kwargs["gguf_file"] = gguf_file
        if load_in_4bit:
            kwargs["quantization_config"] = _four_bit_config(dtype)
            kwargs["device_map"] = "auto"
        try:
            model = AutoModelForCausalLM.from_pretrained(str(base), **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(str(base), **({"gguf_file": gguf_file} if gguf_file else {}))
        except OSError as err:
            raise ConfigError(f"cannot load base model {base}: {str(err).splitlines()[0]}") from err
        if padding_side:
            tokenizer.padding_side = padding_side
        make_bidirectional(model)
        merged = []
        for adapter in merge_adapters:
            model = _merge_adapter(model, adapter)
            merged.append(str(adapter))
        if not load_in_4bit:
            model.to(resolve_device(device))
        if lora is not None:
            model = _attach_lora(model, lora, load_in_4bit)
        config = {"base_model": str(base), "merged_adapters": merged, "gguf_file": gguf_file,
                  "lora": lora.to_dict() if lora else None, "torch_dtype": str(dtype).replace("torch.", "")}
        return cls(model, tokenizer, _as_textualizer(textualizer), pooling=pooling, max_length=max_length,
                   config=config)

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | os.PathLike, device: Optional[str] = None,
                        torch_dtype=None, trainable: bool = False) -> "SpectrumEncoder":
        """Load a folder written by `save_pretrained` (local path or Hub repo id)."""
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = _resolve_folder(path_or_hub_id)
        from llm4ms.model.spectrum_model import SpectrumModel, is_spectrum_model_folder

        if is_spectrum_model_folder(folder):  # format 2: a sentence-transformers folder
            return SpectrumModel.from_pretrained(folder, device=device)
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise ConfigError(f"{folder}: not an llm4ms model folder (no {CONFIG_NAME}); use from_base for an LLM")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        dtype = resolve_dtype(torch_dtype if torch_dtype is not None else config.get("torch_dtype"))
        config["torch_dtype"] = str(dtype).replace("torch.", "")
        if config.get("base_weights") == "included":
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
        else:
            model = AutoModelForCausalLM.from_pretrained(config["base_model"], dtype=dtype,
                                                         **({"gguf_file": config["gguf_file"]}
                                                            if config.get("gguf_file") else {}))
            for adapter in config.get("merged_adapters", []):
                model = _merge_adapter(model, adapter)
        make_bidirectional(model)
        model.to(resolve_device(device))
        if (folder / ADAPTER_DIR).is_dir():
            model = PeftModel.from_pretrained(model, str(folder / ADAPTER_DIR), is_trainable=trainable)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        tokenizer.padding_side = config.get("padding_side", tokenizer.padding_side)
        encoder = cls(model, tokenizer, Textualizer.from_dict(config["textualizer"]), pooling=config["pooling"],
                      max_length=config["max_length"], config=config)
        local = Path(path_or_hub_id).expanduser()
        encoder.name_or_path = str(local.resolve()) if local.exists() else str(path_or_hub_id)
        return encoder

    # ---- properties -----------------------------------------------------------------------------
    @property
    def causal_lm(self):
        """The transformers causal-LM module (inside the peft wrapper when LoRA is attached)."""
        return self.model.get_base_model() if _is_peft(self.model) else self.model

    @property
    def body(self):
        """The decoder stack without the LM head: what embeddings are pooled from."""
        lm = self.causal_lm
        return getattr(lm, lm.base_model_prefix)

    @property
    def dim(self) -> int:
        config = self.causal_lm.config
        return int(getattr(config, "text_config", config).hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def identity(self) -> str:
        """sha256 of the computing config and every weight tensor; equal after save/load."""
        if self._identity is None:
            digest = hashlib.sha256()
            core = {key: self.config.get(key) for key in IDENTITY_KEYS}
            digest.update(json.dumps(core, sort_keys=True).encode())
            update_with_tensors(digest, self.model.state_dict())
            self._identity = digest.hexdigest()
        return self._identity

    def invalidate_identity(self) -> None:
        """Call after changing weights in place (training); `identity` is recomputed on next use."""
        self._identity = None

    # ---- adapters -------------------------------------------------------------------------------
    def add_lora(self, lora: LoraSettings) -> None:
        """Attach a fresh trainable LoRA adapter (merging an existing one first)."""
        if _is_peft(self.model):
            self.merge_lora()
        self.model = _attach_lora(self.model, lora, load_in_4bit=False)
        self.config["lora"] = lora.to_dict()
        self._identity = None

    def merge_lora(self) -> None:
        """Fold the LoRA adapter into the weights (stacking: the next stage starts from these)."""
        if _is_peft(self.model):
            self.model = self.model.merge_and_unload()
            self.config["merged_adapters"] = [*self.config.get("merged_adapters", []), "(merged lora)"]
            self.config["lora"] = None
            self._identity = None

    # ---- embedding ------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt")

    def embed_batch(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled (not normalised) float32 embeddings; differentiable, for training losses."""
        # positions count real tokens only, so left padding gives exactly the unpadded result
        position_ids = (attention_mask.long().cumsum(dim=1) - 1).clamp_min(0)
        output = self.body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        return pool(output.last_hidden_state, attention_mask, self.pooling).float()

    def texts(self, items: Iterable[TextOrSpectrum]) -> list[str]:
        """Texts as the model reads them: strings pass through, spectra go through the textualizer."""
        return [item if isinstance(item, str) else self.textualizer(item) for item in items]

    def encode(self, spectra: Iterable[TextOrSpectrum], batch_size: int = 64,
               show_progress: Optional[bool] = None) -> np.ndarray:
        """(n, dim) float32 L2-normalised embeddings, in input order."""
        return self.encode_texts(self.texts(spectra), batch_size=batch_size, show_progress=show_progress)

    def encode_texts(self, texts: Sequence[str], batch_size: int = 64,
                     show_progress: Optional[bool] = None) -> np.ndarray:
        from tqdm.auto import tqdm

        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if show_progress is None:
            show_progress = len(texts) > 20 * batch_size
        was_training = self.model.training
        self.model.eval()
        device = self.device
        chunk = max(batch_size * 64, 8192)  # sort by length within chunks: bounded memory for big libraries
        try:
            with torch.inference_mode(), tqdm(total=len(texts), disable=not show_progress, unit="spec",
                                              desc="embedding") as bar:
                for start in range(0, len(texts), chunk):
                    encoded = self.tokenizer(texts[start:start + chunk], truncation=True,
                                             max_length=self.max_length)["input_ids"]
                    order = np.argsort([-len(ids) for ids in encoded], kind="stable")
                    for b in range(0, len(order), batch_size):
                        index = order[b:b + batch_size]
                        batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in index]},
                                                   return_tensors="pt")
                        vectors = self.embed_batch(batch["input_ids"].to(device),
                                                   batch["attention_mask"].to(device))
                        vectors = torch.nn.functional.normalize(vectors, dim=-1)
                        out[start + index] = vectors.cpu().numpy()
                        bar.update(len(index))
        finally:
            self.model.train(was_training)
        return out

    # ---- saving ---------------------------------------------------------------------------------
    def save_pretrained(self, out_dir: str | os.PathLike, reference_base: bool = False) -> Path:
        """Write the model folder atomically (a temporary folder renamed into place).

        ``reference_base=True`` saves only the adapter and records the base model (and merged adapters)
        by name, for big Hub models; loading then fetches and re-merges them.
        """
        from llm4ms.model.card import render_model_card

        out = Path(out_dir)
        if reference_base and "(merged lora)" in self.config.get("merged_adapters", []):
            raise ConfigError("cannot reference the base by name: a trained adapter was merged into it; "
                              "save with reference_base=False")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        try:
            config = dict(self.config)
            config.update(format_version=FORMAT_VERSION, base_weights="referenced" if reference_base else "included",
                          versions=_versions(), identity=self.identity)
            if not reference_base:
                lm = self.causal_lm
                lm.save_pretrained(tmp, state_dict=base_state_dict(lm), safe_serialization=True)
            if _is_peft(self.model):
                self.model.save_pretrained(str(tmp / ADAPTER_DIR))
            self.tokenizer.save_pretrained(tmp)
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, default=str) + "\n", encoding="utf-8")
            (tmp / "README.md").write_text(render_model_card(config, self), encoding="utf-8")
            replace_dir(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return out

    def push_to_hub(self, repo_id: str, private: bool = False, reference_base: bool = False,
                    token: Optional[str] = None) -> str:
        """Save to a temporary folder and upload it as a Hub model repo; returns the repo URL."""
        if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
            raise ConfigError("push_to_hub: HF_HUB_OFFLINE is set; unset it to upload")
        try:
            from huggingface_hub import HfApi
        except ImportError as err:  # pragma: no cover
            raise ConfigError("push_to_hub needs the huggingface_hub package") from err
        api = HfApi(token=token)
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save_pretrained(Path(tmp) / "model", reference_base=reference_base)
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                              commit_message="Upload llm4ms spectrum encoder")
        return str(url)


# ---- helpers ----------------------------------------------------------------------------------------
def update_with_tensors(digest, state: dict) -> None:
    """Feed every tensor (name, dtype, shape and raw bytes, in name order) into a hashlib digest."""
    for name, tensor in sorted(state.items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())


def resolve_device(device: Optional[str] = None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(value) -> torch.dtype:
    """None/"float32" -> fp32; "bf16"/"bfloat16"; "fp16"; "auto" -> bf16 on bf16-capable CUDA else fp32."""
    if value is None:
        return torch.float32
    if isinstance(value, torch.dtype):
        return value
    name = str(value).lower().replace("torch.", "")
    if name == "auto":
        cuda_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else torch.float32
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}
    if name not in table:
        raise ConfigError(f"unknown torch dtype {value!r}; use float32, bfloat16, float16 or auto")
    return table[name]


def _four_bit_config(dtype: torch.dtype):
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise ConfigError("load_in_4bit needs the bitsandbytes package (pip install 'llm4ms[gpu]')") from err
    if not torch.cuda.is_available():
        raise ConfigError("load_in_4bit needs a CUDA GPU; none found (load without 4-bit on CPU)")
    from transformers import BitsAndBytesConfig

    compute = dtype if dtype != torch.float32 else torch.bfloat16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
                              bnb_4bit_use_double_quant=True)


def _is_peft(model) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, PeftModel)


def _merge_adapter(model, adapter: str | os.PathLike):
    """Load a peft adapter onto `model` and fold it into the weights."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot merge adapter {adapter}: {str(err).splitlines()[0]}") from err


def _attach_lora(model, lora: LoraSettings, load_in_4bit: bool):
    from peft import get_peft_model

    if load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    return get_peft_model(model, lora.to_peft())


def base_state_dict(lm, merge_lora: bool = False) -> dict[str, torch.Tensor]:
    """The causal LM's weights without LoRA parameters (names as in a plain model).

    With ``merge_lora=True`` the active adapters' deltas are added, without touching the live model.
    """
    state = {}
    for name, tensor in lm.state_dict().items():
        if "lora_" in name:
            continue
        state[name.replace(".base_layer.", ".")] = tensor
    if merge_lora:
        from peft.tuners.lora import LoraLayer

        for module_name, module in lm.named_modules():
            if isinstance(module, LoraLayer) and hasattr(module, "get_delta_weight"):
                key = f"{module_name}.weight"
                weight = state[key]
                for adapter in module.active_adapters:
                    if adapter in module.lora_A:
                        weight = weight + module.get_delta_weight(adapter).to(weight.dtype)
                state[key] = weight
    return state


def _as_textualizer(value: Textualizer | str | dict) -> Textualizer:
    if isinstance(value, Textualizer):
        return value
    if isinstance(value, str):
        return Textualizer.from_preset(value)
    return Textualizer.from_dict(value)


def _resolve_folder(path_or_hub_id: str | os.PathLike) -> Path:
    path = Path(path_or_hub_id)
    if path.exists():
        return path
    text = str(path_or_hub_id)
    if text.count("/") != 1 or text.startswith((".", "/")):
        raise ConfigError(f"{text}: no such model folder (and not a Hub id like owner/name)")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=text, repo_type="model"))
    except Exception as err:  # offline, missing repo, auth: one clear line
        raise ConfigError(f"{text}: not a local folder and cannot fetch it from the Hub "
                          f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err


def replace_dir(src: Path, dst: Path) -> None:
    """Move `src` onto `dst`; an existing `dst` is renamed away first and removed after."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _versions() -> dict[str, str]:
    from llm4ms.utils import package_versions

    return package_versions(("llm4ms", "transformers", "torch", "peft", "tokenizers"))
