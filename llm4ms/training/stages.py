"""The three LLM2Vec-style stages as short functions over a `SpectrumEncoder`.

MNTP (masked next-token prediction with the LM head) -> SimCSE (same text twice, dropout views,
in-batch negatives) -> supervised (anchor/positive/hard-negative triples). Each stage attaches a fresh
LoRA adapter on top of the previous stage's merged weights, trains it with `train_loop`, and saves an
encoder folder ``output_dir/final`` whose config (and model card) records how it was trained.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from llm4ms.errors import ConfigError
from llm4ms.training.collators import IGNORE_INDEX, MNTPCollator, TripleCollator, ensure_mask_token, _tokenize
from llm4ms.training.losses import info_nce
from llm4ms.training.trainers import LoopResult, LoopSettings, make_accelerator, retrieval_recall, settings_dict, train_loop
from llm4ms.utils import write_json

log = logging.getLogger(__name__)
TINY = re.compile(r"^tiny:(\d+)x(\d+)$")
SMOLLM2 = re.compile(r"^smollm2(?::(\d+))?$")


# ---- models -----------------------------------------------------------------------------------------
def resolve_base(name: str, texts: Sequence[str], work_dir: str | Path, seed: int = 0) -> str:
    """Model names with a local recipe; anything else (folder, Hub id) is returned unchanged.

    ``tiny:<hidden>x<layers>`` builds a small random Llama with a tokenizer trained on `texts`;
    ``smollm2`` / ``smollm2:<layers>`` writes SmolLM2-135M (optionally truncated) from the local GGUF.
    Both go under `work_dir` and are reused when already there.
    """
    smol = SMOLLM2.match(name)
    if smol:
        from llm4ms.model.smollm2 import prepare_smollm2

        layers = int(smol.group(1)) if smol.group(1) else None
        return str(prepare_smollm2(Path(work_dir) / f"smollm2_{layers or 'all'}", num_layers=layers))
    match = TINY.match(name)
    if not match:
        return name
    from llm4ms.model.tiny import build_tiny_model

    hidden, layers = int(match.group(1)), int(match.group(2))
    folder = Path(work_dir) / f"tiny_{hidden}x{layers}"
    if not (folder / "config.json").exists():
        build_tiny_model(folder, list(texts), hidden_size=hidden, num_layers=layers,
                         heads=max(1, hidden // 32), seed=seed)
    return str(folder)


def load_encoder(base: str, textualizer: Any = None, pooling: str = "mean", max_length: int = 512,
                 torch_dtype=None, load_in_4bit: bool = False):
    """An llm4ms folder (previous stage, adapter merged) or a causal-LM folder / Hub id."""
    from llm4ms.model.encoder import CONFIG_NAME, SpectrumEncoder

    if (Path(base) / CONFIG_NAME).is_file():
        encoder = SpectrumEncoder.from_pretrained(base, torch_dtype=torch_dtype)
        encoder.merge_lora()
        if textualizer is not None:
            encoder.textualizer = _textualizer(textualizer)
            encoder.config["textualizer"] = encoder.textualizer.to_dict()
        return encoder
    return SpectrumEncoder.from_base(base, textualizer=_textualizer(textualizer or "llm4ms-v2"), pooling=pooling,
                                     max_length=max_length, torch_dtype=torch_dtype, load_in_4bit=load_in_4bit)


def _textualizer(value):
    from llm4ms.text import Textualizer

    if isinstance(value, Textualizer):
        return value
    return Textualizer.from_preset(value) if isinstance(value, str) else Textualizer.from_dict(value)


def set_attention_dropout(encoder, probability: float) -> float:
    """Set attention dropout on every attention module (Llama has no hidden dropout); returns the old value."""
    config = encoder.causal_lm.config
    old = float(getattr(config, "attention_dropout", 0.0) or 0.0)
    config.attention_dropout = probability
    for module in encoder.causal_lm.modules():
        if hasattr(module, "attention_dropout") and not isinstance(module, torch.nn.Dropout):
            module.attention_dropout = probability
    return old


class _Embedder(torch.nn.Module):
    """Module view of `encoder.embed_batch`, so accelerate/DDP wraps the real forward."""

    def __init__(self, encoder) -> None:
        super().__init__()
        self.inner = encoder.model
        self.encoder = [encoder]  # a list: not registered as a sub-module

    def forward(self, input_ids, attention_mask):
        return self.encoder[0].embed_batch(input_ids, attention_mask)


def _prepare(encoder, settings: LoopSettings, lora) -> None:
    if lora is not None:
        encoder.add_lora(lora)
    if settings.gradient_checkpointing:
        encoder.causal_lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    encoder.model.train()


# ---- validation ---------------------------------------------------------------------------------------
def retrieval_evaluator(encoder, queries: Sequence, library: Sequence, batch_size: int = 64) -> Callable[[], dict]:
    """`evaluate()` for `train_loop`: Recall@1/@10 of validation queries against a validation library."""
    query_keys = [s.inchikey14 for s in queries]
    library_keys = [s.inchikey14 for s in library]

    def evaluate() -> dict:
        q = encoder.encode(queries, batch_size=batch_size, show_progress=False)
        lib = encoder.encode(library, batch_size=batch_size, show_progress=False)
        return retrieval_recall(q, query_keys, lib, library_keys, ks=(1, 10))

    return evaluate


# ---- stages ----------------------------------------------------------------------------------------------
def train_mntp(encoder, texts: Sequence[str], settings: LoopSettings, lora=None, mask_probability: float = 0.2,
               evaluate: Optional[Callable[[], dict]] = None) -> LoopResult:
    """Masked next-token prediction: causal-LM loss on `MNTPCollator` labels (bidirectional model)."""
    ensure_mask_token(encoder.tokenizer, encoder.causal_lm)
    _prepare(encoder, settings, lora)
    accelerator = make_accelerator(settings)
    collator = MNTPCollator(encoder.tokenizer, mask_probability=mask_probability, max_length=encoder.max_length)
    model, device = encoder.model, accelerator.device

    def step_loss(indices, micro_step):
        collator.generator = torch.Generator().manual_seed(settings.seed * 1_000_003 + micro_step)
        batch = {k: v.to(device) for k, v in collator([texts[i] for i in indices]).items()}
        if not bool((batch["labels"] != IGNORE_INDEX).any()):  # nothing masked: a zero loss keeps DDP in step
            return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.sum() * 0.0
        return model(**batch).loss

    return train_loop(model, step_loss, len(texts), settings, accelerator, evaluate)


def train_simcse(encoder, texts: Sequence[str], settings: LoopSettings, lora=None, scale: float = 20.0,
                 attention_dropout: float = 0.1, evaluate: Optional[Callable[[], dict]] = None) -> LoopResult:
    """Unsupervised SimCSE: each text twice in one batch, dropout makes two views; in-batch negatives."""
    _prepare(encoder, settings, lora)
    old = set_attention_dropout(encoder, attention_dropout)
    accelerator = make_accelerator(settings)
    embedder = _Embedder(encoder)

    def step_loss(indices, micro_step):
        batch = _tokenize(encoder.tokenizer, [texts[i] for i in indices] * 2, encoder.max_length)
        vectors = embedder(batch["input_ids"].to(accelerator.device), batch["attention_mask"].to(accelerator.device))
        first, second = vectors.chunk(2)
        return info_nce(first, second, scale=scale)

    try:
        return train_loop(embedder, step_loss, len(texts), settings, accelerator, evaluate)
    finally:
        set_attention_dropout(encoder, old)


def train_supervised(encoder, triples: Sequence[dict], settings: LoopSettings, lora=None, scale: float = 50.0,
                     num_negatives: int = 1, symmetric: bool = False,
                     evaluate: Optional[Callable[[], dict]] = None) -> LoopResult:
    """Supervised contrastive: (anchor, positive, H hard negatives) texts; in-batch + hard negatives."""
    _prepare(encoder, settings, lora)
    accelerator = make_accelerator(settings)
    embedder = _Embedder(encoder)
    collator = TripleCollator(encoder.tokenizer, max_length=encoder.max_length, num_negatives=num_negatives)
    device = accelerator.device

    def run(part):
        return embedder(part["input_ids"].to(device), part["attention_mask"].to(device))

    def step_loss(indices, micro_step):
        batch = collator([triples[i] for i in indices])
        negatives = run(batch["negatives"]) if batch["num_negatives"] else None
        return info_nce(run(batch["anchor"]), run(batch["positive"]), negatives, scale=scale, symmetric=symmetric)

    return train_loop(embedder, step_loss, len(triples), settings, accelerator, evaluate)


# ---- saving ----------------------------------------------------------------------------------------------
def finish_stage(encoder, settings: LoopSettings, stage: str, result: LoopResult, data: dict[str, Any],
                 extra: Optional[dict[str, Any]] = None) -> Path:
    """Record training info in the encoder config, save ``final/`` and ``train_results.json``."""
    out = Path(settings.output_dir)
    previous = encoder.config.get("training") or {}
    history = list(previous.get("stages", [])) if isinstance(previous, dict) else []
    validation = {k: v for k, v in result.validation.items() if k in ("before", "after")}
    info = {"stage": stage, "data": data, "steps": result.steps, "final_loss": round(float(result.final_loss), 5),
            "learning_rate": settings.learning_rate, "batch_size": settings.batch_size,
            "gradient_accumulation_steps": settings.gradient_accumulation_steps, "seed": settings.seed,
            "validation": validation, **(extra or {})}
    encoder.config["training"] = {**info, "stages": history + [{k: info[k] for k in ("stage", "steps", "final_loss")}]}
    if validation.get("after"):
        encoder.config["scores"] = {f"validation {k}": v for k, v in validation["after"].items()}
    encoder.invalidate_identity()
    final = encoder.save_pretrained(out / "final")
    write_json(out / "train_results.json", {**info, "seconds": round(result.seconds, 2),
                                             "resumed_from": result.resumed_from,
                                             "validation_history": result.validation.get("history", []),
                                             "settings": settings_dict(settings), "final_dir": str(final)})
    return final
