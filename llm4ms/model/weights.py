"""Weights plumbing shared by the model room: dtypes and devices, LoRA settings and merging, hashing, folders.

Why hand-written: transformers' peft integration (which sentence-transformers uses for ``add_adapter``) can
add, load and save adapters but not fold one into the weights; `merge_lora_in_place` does that with peft's
own `LoraLayer.merge`, so a stage can stack a new adapter on the previous stage's merged weights.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from llm4ms.errors import ConfigError

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class LoraSettings:
    """LoRA hyper-parameters (LLM4MS used r=16, alpha=32, dropout 0.05 on all projections)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES

    def to_peft(self, task_type: str = "FEATURE_EXTRACTION"):
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), task_type=task_type)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data


def has_lora(model: torch.nn.Module) -> bool:
    from peft.tuners.lora import LoraLayer

    return any(isinstance(module, LoraLayer) for module in model.modules())


def merge_lora_in_place(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every LoRA layer of `model` into its base weights and put the plain layers back.

    Works for adapters injected by transformers' peft integration (``model.add_adapter``) and inside a
    `PeftModel` alike; afterwards the model has exactly the parameter names of the original model.
    """
    from peft.tuners.lora import LoraLayer

    if hasattr(model, "merge_and_unload") and hasattr(model, "peft_config") and hasattr(model, "base_model"):
        return model.merge_and_unload()  # a PeftModel wrapper
    layers = [(name, module) for name, module in model.named_modules() if isinstance(module, LoraLayer)]
    for name, module in layers:
        module.merge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.get_base_layer())
    if layers:
        for attr in ("peft_config", "_hf_peft_config_loaded"):
            if hasattr(model, attr):
                setattr(model, attr, {} if attr == "peft_config" else False)
    return model


def update_with_tensors(digest, state: dict) -> None:
    """Feed every tensor (name, dtype, shape and raw bytes, in name order) into a hashlib digest."""
    for name, tensor in sorted(state.items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())


def resolve_device(device: Optional[str] = None) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


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


def four_bit_config(dtype: torch.dtype):
    """bitsandbytes NF4 settings for QLoRA; a `ConfigError` where it cannot run (no CUDA or no bitsandbytes)."""
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


def replace_dir(src: Path, dst: Path) -> None:
    """Move `src` onto `dst`; an existing `dst` is renamed away first and removed after."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
