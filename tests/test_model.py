"""Encoder: bidirectional attention, pooling, encode, save/load, LoRA, stacked adapters, ST export, card."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from _model_helpers import build_tiny, random_spectra  # sets HF_HUB_OFFLINE before transformers loads

from llm4ms.errors import ConfigError
from llm4ms.model import LoraSettings, SpectrumEncoder, is_bidirectional, pool
from llm4ms.model.bidirectional import make_bidirectional, probe_bidirectional
from llm4ms.model.encoder import CONFIG_NAME

SPECTRA = random_spectra(24, seed=1)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="module")
def encoder(tiny_dir):
    return SpectrumEncoder.from_base(tiny_dir, textualizer="llm4ms-v2")


def _randomise_lora(encoder, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in encoder.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    encoder.invalidate_identity()


# ---- bidirectional ----------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2", "gemma"])
@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_config_flag_makes_attention_bidirectional(arch, impl):
    import transformers as tf

    cls = {"llama": tf.LlamaConfig, "mistral": tf.MistralConfig, "qwen2": tf.Qwen2Config,
           "gemma": tf.GemmaConfig}[arch]
    config = cls(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64)
    torch.manual_seed(0)
    model = tf.AutoModelForCausalLM.from_config(config, attn_implementation=impl).eval()
    body = getattr(model, model.base_model_prefix)
    assert not is_bidirectional(model) and not probe_bidirectional(body, 64)
    make_bidirectional(model)
    assert is_bidirectional(model) and probe_bidirectional(body, 64)


def test_tiny_model_is_bidirectional_after_reload(encoder):
    assert encoder.causal_lm.config.is_causal is False
    assert probe_bidirectional(encoder.body, encoder.causal_lm.config.vocab_size)


# ---- pooling ----------------------------------------------------------------------------------------
def test_pooling_modes_handle_left_and_right_padding():
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 3)
    right = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    for mask in (right, left):
        real = hidden[0][mask[0].bool()]
        assert torch.allclose(pool(hidden, mask, "mean")[0], real.mean(0))
        w = torch.tensor([1.0, 2.0, 3.0])
        assert torch.allclose(pool(hidden, mask, "weighted_mean")[0], (real * w[:, None]).sum(0) / w.sum())
        assert torch.equal(pool(hidden, mask, "last_token")[0], real[-1])
        assert torch.equal(pool(hidden, mask, "first_token")[0], real[0])
        assert torch.equal(pool(hidden, mask, "last_token")[1], hidden[1, -1])
    with pytest.raises(ConfigError):
        pool(hidden, right, "max")


@pytest.mark.parametrize("pooling", ["mean", "weighted_mean", "last_token", "first_token"])
def test_padding_does_not_leak_into_embeddings(tiny_dir, pooling):
    enc = SpectrumEncoder.from_base(tiny_dir, pooling=pooling)
    texts = enc.texts(SPECTRA[:6])
    alone = np.stack([enc.encode_texts([t])[0] for t in texts])
    for side in ("right", "left"):
        enc.tokenizer.padding_side = side
        batch = enc.encode_texts(texts, batch_size=6)
        np.testing.assert_allclose(batch, alone, atol=2e-5)


# ---- encode -----------------------------------------------------------------------------------------
def test_encode_shape_norm_order(encoder):
    out = encoder.encode(SPECTRA, batch_size=7)
    assert out.shape == (len(SPECTRA), encoder.dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    reversed_out = encoder.encode(SPECTRA[::-1], batch_size=5)
    np.testing.assert_allclose(reversed_out[::-1], out, atol=2e-5)  # length sorting restored the order
    np.testing.assert_allclose(encoder.encode([encoder.textualizer(SPECTRA[3])]), out[3:4], atol=2e-5)
    assert encoder.encode([]).shape == (0, encoder.dim)
    assert np.abs(out[0] - out[1]).max() > 1e-3  # different spectra, different vectors


def test_embed_batch_is_differentiable(encoder):
    batch = encoder.tokenize(encoder.texts(SPECTRA[:3]))
    vectors = encoder.embed_batch(batch["input_ids"], batch["attention_mask"])
    vectors.sum().backward()
    grads = [p.grad for p in encoder.model.parameters() if p.grad is not None]
    assert vectors.shape == (3, encoder.dim) and grads and any(g.abs().sum() > 0 for g in grads)
    encoder.model.zero_grad(set_to_none=True)


def test_max_length_truncates(tiny_dir):
    enc = SpectrumEncoder.from_base(tiny_dir, max_length=8)
    assert enc.tokenize(["10:1 20:2 30:3 40:4 50:5 60:6 70:7 80:8"])["input_ids"].shape[1] == 8


def test_four_bit_without_cuda_is_a_config_error(tiny_dir):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ConfigError):
        SpectrumEncoder.from_base(tiny_dir, load_in_4bit=True)


def test_missing_base_and_bad_pooling(tmp_path, tiny_dir):
    with pytest.raises(ConfigError):
        SpectrumEncoder.from_base(tmp_path / "missing")
    with pytest.raises(ConfigError):
        SpectrumEncoder.from_base(tiny_dir, pooling="cls")
    with pytest.raises(ConfigError):
        SpectrumEncoder.from_pretrained(tiny_dir)  # an LLM folder, not an encoder folder


# ---- save / load ------------------------------------------------------------------------------------
def test_save_load_identical_and_identity_stable(encoder, tmp_path):
    before = encoder.encode(SPECTRA)
    folder = encoder.save_pretrained(tmp_path / "enc")
    again = SpectrumEncoder.from_pretrained(folder)
    np.testing.assert_array_equal(again.encode(SPECTRA), before)
    assert again.identity == encoder.identity
    config = json.loads((folder / CONFIG_NAME).read_text())
    assert config["identity"] == encoder.identity and config["dim"] == encoder.dim
    assert config["textualizer"] == encoder.textualizer.to_dict() and config["pooling"] == "mean"
    assert {"transformers", "torch", "peft", "llm4ms"} <= set(config["versions"])
    assert json.loads((folder / "config.json").read_text())["is_causal"] is False
    # the identity follows what the model computes
    other = SpectrumEncoder.from_base(encoder.config["base_model"], pooling="weighted_mean")
    assert other.identity != encoder.identity


def test_lora_attach_save_load(tiny_dir, tmp_path):
    enc = SpectrumEncoder.from_base(tiny_dir, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    trainable = [n for n, p in enc.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("gate_proj" in n for n in trainable)  # MLP projections are targeted too
    plain = enc.encode(SPECTRA)
    base_identity = enc.identity
    _randomise_lora(enc, seed=0)
    tuned = enc.encode(SPECTRA)
    assert np.abs(tuned - plain).max() > 1e-2 and enc.identity != base_identity
    folder = enc.save_pretrained(tmp_path / "lora")
    assert (folder / "adapter" / "adapter_config.json").is_file()
    loaded = SpectrumEncoder.from_pretrained(folder)
    np.testing.assert_array_equal(loaded.encode(SPECTRA), tuned)
    assert loaded.identity == enc.identity


def test_reference_base_saves_only_adapter(tiny_dir, tmp_path):
    enc = SpectrumEncoder.from_base(tiny_dir, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    _randomise_lora(enc, seed=1)
    folder = enc.save_pretrained(tmp_path / "ref", reference_base=True)
    assert not list(folder.glob("*.safetensors")) and (folder / "adapter").is_dir()
    loaded = SpectrumEncoder.from_pretrained(folder)
    np.testing.assert_array_equal(loaded.encode(SPECTRA[:10]), enc.encode(SPECTRA[:10]))


def test_stacked_adapters_merge_a_then_attach_b(tiny_dir, tmp_path):
    a = SpectrumEncoder.from_base(tiny_dir, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    _randomise_lora(a, seed=2)
    a.model.save_pretrained(str(tmp_path / "adapter_a"))  # a plain peft adapter, as from the Hub
    merged_a = a.encode(SPECTRA[:10])

    stacked = SpectrumEncoder.from_base(tiny_dir, merge_adapters=[tmp_path / "adapter_a"],
                                        lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    np.testing.assert_allclose(stacked.encode(SPECTRA[:10]), merged_a, atol=1e-5)  # B starts at zero
    _randomise_lora(stacked, seed=3)
    with_b = stacked.encode(SPECTRA[:10])
    assert np.abs(with_b - merged_a).max() > 1e-2
    assert stacked.config["merged_adapters"] == [str(tmp_path / "adapter_a")]
    folder = stacked.save_pretrained(tmp_path / "stacked")
    np.testing.assert_array_equal(SpectrumEncoder.from_pretrained(folder).encode(SPECTRA[:10]), with_b)
    by_reference = stacked.save_pretrained(tmp_path / "stacked_ref", reference_base=True)
    np.testing.assert_allclose(SpectrumEncoder.from_pretrained(by_reference).encode(SPECTRA[:10]), with_b,
                               atol=1e-6)


# ---- exports and card -------------------------------------------------------------------------------
def test_sentence_transformers_export_matches(tiny_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    from llm4ms.model.st_export import export_sentence_transformer

    enc = SpectrumEncoder.from_base(tiny_dir, lora=LoraSettings(r=4, alpha=8, dropout=0.0))
    _randomise_lora(enc, seed=4)
    enc.tokenizer.padding_side = "left"  # the export must still match
    expected = enc.encode(SPECTRA, batch_size=8)
    folder = export_sentence_transformer(enc, tmp_path / "st")
    st = SentenceTransformer(str(folder), device="cpu")
    got = st.encode(enc.texts(SPECTRA), batch_size=8, convert_to_numpy=True)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert json.loads((folder / "config.json").read_text())["is_causal"] is False
    assert enc.tokenizer.padding_side == "left"


def test_model_card_contents(encoder, tmp_path):
    encoder.config["training"] = {"data": "MassBank EI (CC BY)", "license": "cc-by-4.0", "steps": 1000}
    encoder.config["scores"] = {"massbank_replicates": {"recall@1": 0.75}}
    try:
        card = (encoder.save_pretrained(tmp_path / "card") / "README.md").read_text()
    finally:
        encoder.config["training"], encoder.config["scores"] = {}, {}
    front = card.split("---")[1]
    assert "library_name: llm4ms" in front and "license: cc-by-4.0" in front and "base_model:" in front
    for section in ("## What it is", "## How to use", "## Input text", "## Training data and licences",
                    "## Measured scores", "## Limitations"):
        assert section in card
    assert "llm4ms-v2" in card and "recall@1: 0.75" in card and "MassBank EI (CC BY)" in card
    assert encoder.identity in card
    bare = (encoder.save_pretrained(tmp_path / "bare") / "README.md").read_text()
    assert "Not measured yet." in bare
