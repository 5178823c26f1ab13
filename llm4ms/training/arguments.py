"""Recipe arguments as dataclasses (help text in field metadata) with `__post_init__` checks.

The recipes parse these with `transformers.HfArgumentParser`; the checks live here so that a config
that cannot run on this machine is refused with one clear `ConfigError` line before any work starts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from llm4ms.errors import ConfigError
from llm4ms.training.trainers import LoopSettings

_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial")


def _help(text: str, **kwargs):
    return field(metadata={"help": text}, **kwargs)


def cuda_bf16_or_cpu_bf16() -> bool:
    """bf16 is usable: a bf16-capable CUDA GPU, or a CPU with native bf16 instructions (AVX512-BF16/AMX)."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass
class ModelArguments:
    model_name_or_path: str = _help("Base model: a causal-LM folder or Hub id, 'tiny:<hidden>x<layers>' (built on "
                                    "the fly), 'smollm2[:<layers>]', or the final/ folder of the previous stage.")
    textualizer: Optional[str] = _help("Textualizer preset; default: the previous stage's, else 'llm4ms-v2'.",
                                       default=None)
    pooling: str = _help("Pooling: mean, weighted_mean, last_token, first_token.", default="mean")
    max_length: int = _help("Maximum tokens per spectrum text.", default=512)
    torch_dtype: Optional[str] = _help("Weights dtype: float32, bfloat16, float16, auto.", default=None)
    load_in_4bit: bool = _help("QLoRA: load the base in 4-bit NF4 (needs CUDA and bitsandbytes).", default=False)
    use_lora: bool = _help("Train a LoRA adapter (else all weights).", default=True)
    lora_r: int = _help("LoRA rank.", default=16)
    lora_alpha: int = _help("LoRA alpha.", default=32)
    lora_dropout: float = _help("LoRA dropout.", default=0.05)
    lora_target_modules: str = _help("Comma-separated module names LoRA wraps.", default=_TARGETS)

    def __post_init__(self) -> None:
        if self.load_in_4bit:
            if not torch.cuda.is_available():
                raise ConfigError("load_in_4bit needs a CUDA GPU and none was found; set load_in_4bit false")
            try:
                import bitsandbytes  # noqa: F401
            except ImportError as err:
                raise ConfigError("load_in_4bit needs the bitsandbytes package (pip install 'llm4ms[gpu]')") from err
        if self.lora_r < 1 or self.lora_alpha < 1 or not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError("lora_r and lora_alpha must be >= 1 and lora_dropout in [0, 1)")
        if self.max_length < 8:
            raise ConfigError(f"max_length {self.max_length} is too small (>= 8)")

    def lora(self):
        if not self.use_lora:
            return None
        from llm4ms.model.encoder import LoraSettings

        targets = tuple(t.strip() for t in self.lora_target_modules.split(",") if t.strip())
        return LoraSettings(r=self.lora_r, alpha=self.lora_alpha, dropout=self.lora_dropout, target_modules=targets)


@dataclass
class DataArguments:
    train_file: str = _help("Training set (.jsonl/.arrow/.parquet) from data_prep/build_training_sets.py.")
    validation_queries: Optional[str] = _help("Validation query spectra (.jsonl); with validation_library.",
                                              default=None)
    validation_library: Optional[str] = _help("Validation library spectra (.jsonl).", default=None)
    max_train_samples: Optional[int] = _help("Use only the first N training rows.", default=None)
    max_validation_queries: Optional[int] = _help("Use only the first N validation queries.", default=None)

    def __post_init__(self) -> None:
        for name in ("train_file", "validation_queries", "validation_library"):
            value = getattr(self, name)
            if value and not Path(value).is_file():
                raise ConfigError(f"{name}: {value} does not exist (build it with data_prep/build_training_sets.py)")
        if bool(self.validation_queries) != bool(self.validation_library):
            raise ConfigError("give both validation_queries and validation_library, or neither")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ConfigError("max_train_samples must be >= 1")


@dataclass
class TrainingArguments:
    output_dir: str = _help("Where checkpoints, loss_log.jsonl, train_results.json and final/ go.")
    max_steps: int = _help("Optimizer steps.", default=1000)
    per_device_train_batch_size: int = _help("Examples per micro-batch per process.", default=32)
    gradient_accumulation_steps: int = _help("Micro-batches per optimizer step.", default=1)
    learning_rate: float = _help("Peak learning rate.", default=2e-4)
    weight_decay: float = _help("AdamW weight decay.", default=0.0)
    lr_scheduler_type: str = _help(f"One of {', '.join(_SCHEDULERS)}.", default="linear")
    warmup_steps: int = _help("Linear warm-up steps.", default=0)
    max_grad_norm: float = _help("Gradient clipping norm (0 = off).", default=1.0)
    seed: int = _help("Seed for data order, masking and initialisation.", default=42)
    bf16: bool = _help("bfloat16 mixed precision (CUDA with bf16, or a CPU with AVX512-BF16/AMX).", default=False)
    gradient_checkpointing: bool = _help("Recompute activations in backward to save memory.", default=False)
    save_steps: int = _help("Checkpoint every N steps (0 = never).", default=100)
    save_total_limit: int = _help("Keep at most N checkpoints.", default=2)
    logging_steps: int = _help("Average and log the loss every N steps.", default=10)
    eval_steps: int = _help("Validate every N steps (also before and after training when a validation set "
                            "is given; 0 = only then).", default=0)
    eval_batch_size: int = _help("Batch size when embedding validation spectra.", default=64)
    resume: bool = _help("Resume from the last checkpoint in output_dir.", default=True)

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ConfigError("max_steps, per_device_train_batch_size and gradient_accumulation_steps must be >= 1")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.lr_scheduler_type not in _SCHEDULERS:
            raise ConfigError(f"lr_scheduler_type {self.lr_scheduler_type!r} is not one of {', '.join(_SCHEDULERS)}")
        if self.bf16 and not cuda_bf16_or_cpu_bf16():
            raise ConfigError("bf16 requested but this machine has no bf16 support (no bf16 CUDA GPU, no "
                              "AVX512-BF16/AMX CPU); set bf16 false")
        if self.logging_steps < 1:
            raise ConfigError("logging_steps must be >= 1")

    def loop_settings(self) -> LoopSettings:
        return LoopSettings(
            output_dir=self.output_dir, max_steps=self.max_steps, batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps, learning_rate=self.learning_rate,
            weight_decay=self.weight_decay, lr_scheduler_type=self.lr_scheduler_type, warmup_steps=self.warmup_steps,
            max_grad_norm=self.max_grad_norm, seed=self.seed, bf16=self.bf16,
            gradient_checkpointing=self.gradient_checkpointing, save_steps=self.save_steps,
            save_total_limit=self.save_total_limit, logging_steps=self.logging_steps, eval_steps=self.eval_steps,
            resume=self.resume)


@dataclass
class MNTPArguments:
    mask_probability: float = _help("Fraction of non-special tokens masked (80/10/10).", default=0.2)

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_probability < 1.0:
            raise ConfigError(f"mask_probability must be in (0, 1), got {self.mask_probability}")


@dataclass
class SimCSEArguments:
    scale: float = _help("Cosine-similarity scale (inverse temperature).", default=20.0)
    attention_dropout: float = _help("Attention dropout making the two views (LLM2Vec: 0.3).", default=0.1)

    def __post_init__(self) -> None:
        if not 0.0 < self.attention_dropout < 1.0:
            raise ConfigError("SimCSE needs attention_dropout in (0, 1): Llama has no other dropout to make two views")
        if self.scale <= 0:
            raise ConfigError("scale must be > 0")


@dataclass
class SupervisedArguments:
    scale: float = _help("Cosine-similarity scale (LLM4MS: 50).", default=50.0)
    num_negatives: int = _help("Hard negatives per triple used (0 = in-batch only).", default=1)
    symmetric: bool = _help("Also score positive -> anchor.", default=False)

    def __post_init__(self) -> None:
        if self.num_negatives < 0 or self.scale <= 0:
            raise ConfigError("num_negatives must be >= 0 and scale > 0")
