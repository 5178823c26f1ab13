"""Encoder: bidirectional attention, pooling, encode, save/load, LoRA stacking, Hub layout, card."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _model_helpers import build_tiny, random_spectra  # sets HF_HUB_OFFLINE before transformers loads

from llm4ms.errors import ConfigError
from llm4ms.model import LoraSettings, SpectrumEncoder, is_bidirectional
from llm4ms.model.bidirectional import make_bidirectional, probe_bidirectional
from llm4ms.model.encoder import CONFIG_NAME

SPECTRA = random_spectra(24, seed=1)
ARCHS = ["llama", "mistral", "qwen2", "gemma"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="module")
def encoder(tiny_dir):
    return SpectrumEncoder.from_base(tiny_dir, textualizer="llm4ms-v2", device="cpu")


def _randomise_lora(encoder, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in encoder.body.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    encoder.invalidate_identity()


def _arch_config(arch, vocab_size=64):
    import transformers as tf

    cls = {"llama": tf.LlamaConfig, "mistral": tf.MistralConfig, "qwen2": tf.Qwen2Config,
           "gemma": tf.GemmaConfig}[arch]
    return cls(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512)


# ---- bidirectional ----------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_config_flag_makes_attention_bidirectional(arch, impl):
    import transformers as tf

    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(_arch_config(arch), attn_implementation=impl).eval()
    body = getattr(model, model.base_model_prefix)
    assert not is_bidirectional(model) and not probe_bidirectional(body, 64)
    make_bidirectional(model)
    assert is_bidirectional(model) and probe_bidirectional(body, 64)


@pytest.mark.parametrize("arch", ARCHS)
def test_from_base_makes_any_architecture_a_bidirectional_encoder(arch, tiny_dir, tmp_path):
    """A causal-LM folder of each architecture (not bidirectional on disk) becomes a bidirectional encoder."""
    import transformers as tf

    tokenizer = tf.AutoTokenizer.from_pretrained(str(tiny_dir))
    torch.manual_seed(0)
    tf.AutoModelForCausalLM.from_config(_arch_config(arch, len(tokenizer))).save_pretrained(tmp_path / arch)
    tokenizer.save_pretrained(tmp_path / arch)
    encoder = SpectrumEncoder.from_base(tmp_path / arch, device="cpu")
    assert encoder.body.config.is_causal is False
    assert probe_bidirectional(encoder.body, len(tokenizer))
    vectors = encoder.encode(SPECTRA[:3])
    assert vectors.shape == (3, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_tiny_model_is_bidirectional_after_reload(encoder, tmp_path):
    reloaded = SpectrumEncoder.from_pretrained(encoder.save_pretrained(tmp_path / "m"))
    assert reloaded.body.config.is_causal is False
    assert probe_bidirectional(reloaded.body, reloaded.body.config.vocab_size)


# ---- pooling and encoding ------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["mean", "weighted_mean", "last_token", "first_token"])
def test_padding_does_not_leak_into_embeddings(tiny_dir, pooling):
    encoder = SpectrumEncoder.from_base(tiny_dir, pooling=pooling, device="cpu")
    assert encoder.pooling == pooling
    together = encoder.encode(SPECTRA[:6], batch_size=6)  # padded to the longest text
    alone = np.stack([encoder.encode([s], batch_size=1)[0] for s in SPECTRA[:6]])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_encode_shape_norm_order(encoder):
    vectors = encoder.encode(SPECTRA, batch_size=5)
    assert vectors.shape == (24, encoder.dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(SPECTRA[::-1], batch_size=7), vectors[::-1], atol=1e-5)
    assert encoder.encode([]).shape == (0, encoder.dim)
    with pytest.raises(ConfigError):
        encoder.encode(SPECTRA[:1], batch_size=0)


def test_max_length_truncates(tiny_dir):
    short = SpectrumEncoder.from_base(tiny_dir, max_length=8, device="cpu")
    assert short.max_length == 8
    assert len(short.st.tokenize(short.texts(SPECTRA[:1]))["input_ids"][0]) <= 8


def test_four_bit_without_cuda_is_a_config_error(tiny_dir):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError, match="4-bit|bitsandbytes"):
        SpectrumEncoder.from_base(tiny_dir, load_in_4bit=True)


def test_missing_base_bad_pooling_and_not_a_model_folder(tmp_path, tiny_dir):
    with pytest.raises(ConfigError, match="cannot load base model"):
        SpectrumEncoder.from_base(tmp_path / "nothing-here")
    with pytest.raises(ConfigError, match="unknown pooling"):
        SpectrumEncoder.from_base(tiny_dir, pooling="max")
    with pytest.raises(ConfigError, match="intensity"):
        SpectrumEncoder.from_base(tiny_dir, pooling="intensity")
    with pytest.raises(ConfigError, match="not an llm4ms model folder"):
        SpectrumEncoder.from_pretrained(tiny_dir)  # a causal LM, not an encoder folder
    with pytest.raises(ConfigError, match="no such model folder"):
        SpectrumEncoder.from_pretrained(tmp_path / "a" / "b" / "c")


# ---- save / load / identity -------------------------------------------------------------------------
def test_save_load_identical_identity_stable_and_a_sentence_transformer(encoder, tmp_path):
    from sentence_transformers import SentenceTransformer

    folder = encoder.save_pretrained(tmp_path / "enc")
    reloaded = SpectrumEncoder.from_pretrained(folder)
    np.testing.assert_allclose(reloaded.encode(SPECTRA), encoder.encode(SPECTRA), atol=1e-6)
    assert reloaded.identity == encoder.identity
    assert json.loads((folder / CONFIG_NAME).read_text())["identity"] == encoder.identity
    theirs = SentenceTransformer(str(folder), device="cpu", trust_remote_code=True).encode(encoder.texts(SPECTRA))
    np.testing.assert_allclose(theirs, encoder.encode(SPECTRA), atol=1e-5)
    other = SpectrumEncoder.from_base(build_tiny(tmp_path / "other", seed=1), device="cpu")
    assert other.identity != encoder.identity
    assert SpectrumEncoder.from_base(encoder.body.name_or_path, pooling="last_token",
                                     device="cpu").identity != encoder.identity


def test_lora_is_merged_on_save_and_reloads_identically(tiny_dir, tmp_path):
    encoder = SpectrumEncoder.from_base(tiny_dir, device="cpu")
    plain = encoder.encode(SPECTRA)
    encoder.add_lora(LoraSettings(r=4, alpha=8, dropout=0.0))
    np.testing.assert_allclose(encoder.encode(SPECTRA), plain, atol=1e-6)  # LoRA B starts at zero
    _randomise_lora(encoder, 0)
    adapted = encoder.encode(SPECTRA)
    assert not np.allclose(adapted, plain, atol=1e-4)
    folder = encoder.save_pretrained(tmp_path / "lora")
    assert not (folder / "adapter_config.json").exists()  # weights merged: a plain sentence-transformers folder
    reloaded = SpectrumEncoder.from_pretrained(folder)
    np.testing.assert_allclose(reloaded.encode(SPECTRA), adapted, atol=1e-5)
    assert reloaded.config["merged_adapters"] == 1


def test_stacked_adapters_merge_a_then_attach_b(tiny_dir):
    encoder = SpectrumEncoder.from_base(tiny_dir, device="cpu")
    encoder.add_lora(LoraSettings(r=4, alpha=8, dropout=0.0))
    _randomise_lora(encoder, 1)
    after_a = encoder.encode(SPECTRA)
    encoder.add_lora(LoraSettings(r=4, alpha=8, dropout=0.0))  # merges A, attaches a fresh B
    np.testing.assert_allclose(encoder.encode(SPECTRA), after_a, atol=1e-5)
    trainable = [n for n, p in encoder.body.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    _randomise_lora(encoder, 2)
    assert not np.allclose(encoder.encode(SPECTRA), after_a, atol=1e-4)
    encoder.merge_lora()
    assert encoder.config["merged_adapters"] == 2
    assert not any("lora_" in n for n, _ in encoder.body.named_parameters())


def test_hub_id_loads_through_snapshot_download(encoder, tmp_path, monkeypatch):
    """Hub loading is the same code as a folder once `huggingface_hub` has the files; offline -> one line."""
    import huggingface_hub

    folder = encoder.save_pretrained(tmp_path / "hub-layout")
    calls = []

    def fake_snapshot_download(repo_id, repo_type=None, **kwargs):
        calls.append((repo_id, repo_type))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = SpectrumEncoder.from_pretrained("someone/spectrum-encoder")
    assert calls == [("someone/spectrum-encoder", "model")] and loaded.identity == encoder.identity
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda **kw: (_ for _ in ()).throw(OSError("offline mode")))
    with pytest.raises(ConfigError, match="cannot fetch it from the Hub"):
        SpectrumEncoder.from_pretrained("someone/other")


def test_model_card_contents(encoder, tmp_path):
    encoder.config["training"] = {"stages": [{"stage": "supervised", "steps": 3}], "license": "cc-by-4.0",
                                  "data": "MassBank EI (CC BY)"}
    encoder.config["scores"] = {"recall@1": 0.75}
    try:
        card = (encoder.save_pretrained(tmp_path / "card") / "README.md").read_text()
    finally:
        encoder.config["training"], encoder.config["scores"] = {}, {}
    front = card.split("---")[1]
    assert "library_name: llm4ms" in front and "license: cc-by-4.0" in front
    for section in ("## What it is", "## How to use", "## Input text", "## Embedding", "## Training data",
                    "## Measured scores", "## Limitations", "## Versions"):
        assert section in card
    assert "llm4ms-v2" in card and "recall@1: 0.75" in card and "MassBank EI (CC BY)" in card
    assert encoder.identity in card and "SentenceTransformer" in card
