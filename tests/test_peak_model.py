"""Format-2 models: a sentence-transformers folder of our modules; peak tokens; intensity pooling."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from _training_helpers import synthetic_spectra
from llm4ms.model.encoder import SpectrumEncoder, is_model_folder
from llm4ms.model.peak_model import PEAK_TEXTUALIZER, build_peak_model
from llm4ms.model.peak_vocab import bin_relative_intensity, build_peak_tokenizer, token_weights


@pytest.fixture(scope="module")
def peak_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("peak") / "model"
    build_peak_model(folder, max_mz=300, hidden_size=32, num_layers=1, heads=2, intermediate_size=64, seed=3)
    return folder


def test_one_token_per_peak_and_intensity_weights():
    tokenizer = build_peak_tokenizer(PEAK_TEXTUALIZER, max_mz=300)
    text = PEAK_TEXTUALIZER(synthetic_spectra(1, 1)[0])
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == len(text.split()) and tokenizer.unk_token_id not in ids
    weights = token_weights(tokenizer, PEAK_TEXTUALIZER)
    top = tokenizer.convert_tokens_to_ids("43:9")
    low = tokenizer.convert_tokens_to_ids("43:0")
    assert weights[top] == pytest.approx(bin_relative_intensity(PEAK_TEXTUALIZER, 9) ** 0.5)
    assert weights[top] > weights[low] > 0
    assert weights[tokenizer.pad_token_id] == 0 and weights[tokenizer.convert_tokens_to_ids("[Q]")] == 0
    assert tokenizer("999:3")["input_ids"] == [tokenizer.unk_token_id]  # above max_mz


def test_folder_is_a_sentence_transformer_with_the_same_vectors(peak_folder):
    from sentence_transformers import SentenceTransformer

    assert is_model_folder(peak_folder)
    model = SpectrumEncoder.from_pretrained(peak_folder)
    assert isinstance(model, SpectrumEncoder)
    spectra = synthetic_spectra(5, 2)
    ours = model.encode(spectra)
    plain = SentenceTransformer(str(peak_folder), trust_remote_code=True, device="cpu").encode(model.texts(spectra))
    np.testing.assert_allclose(ours, plain, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert json.loads((peak_folder / "llm4ms_config.json").read_text())["format_version"] == 2


def test_save_load_keeps_identity_and_vectors(peak_folder, tmp_path):
    model = SpectrumEncoder.from_pretrained(peak_folder)
    spectra = synthetic_spectra(3, 1)
    again = SpectrumEncoder.from_pretrained(model.save_pretrained(tmp_path / "copy"))
    assert again.identity == model.identity
    np.testing.assert_array_equal(again.encode(spectra), model.encode(spectra))
    with torch.no_grad():
        next(again.st.parameters()).add_(0.01)
    again.invalidate_identity()
    assert again.identity != model.identity


def test_attention_is_bidirectional(peak_folder):
    model = SpectrumEncoder.from_pretrained(peak_folder)
    transformer = model.st[0]
    first = transformer.preprocess(["41:5 43:9 57:2"])
    second = transformer.preprocess(["41:5 43:9 58:2"])  # only the last token differs
    with torch.no_grad():
        a = transformer(dict(first))["token_embeddings"][0, 0]
        b = transformer(dict(second))["token_embeddings"][0, 0]
    assert not torch.allclose(a, b)  # a causal model would leave position 0 unchanged


def test_intensity_pooling_weights_tokens_and_falls_back_to_mean():
    from llm4ms.model.modules import IntensityPooling

    pooling = IntensityPooling(2, 4, [0.0, 1.0, 3.0, 0.0])
    hidden = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], [[2.0, 2.0], [4.0, 0.0], [9.0, 9.0]]])
    features = {"token_embeddings": hidden, "input_ids": torch.tensor([[1, 2, 0], [0, 3, 0]]),
                "attention_mask": torch.tensor([[1, 1, 0], [1, 1, 0]])}
    out = pooling(features)["sentence_embedding"]
    np.testing.assert_allclose(out[0].numpy(), [0.25, 0.75])  # (1*[1,0] + 3*[0,1]) / 4, padding ignored
    np.testing.assert_allclose(out[1].numpy(), [3.0, 1.0])    # no peak token: plain mean of real tokens


def test_untrained_peak_model_ranks_like_sqrt_cosine():
    """Intensity pooling of near-orthogonal peak vectors is a random projection of the sqrt spectrum."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        build_peak_model(tmp + "/m", max_mz=300, hidden_size=128, num_layers=1, heads=4, intermediate_size=128)
        model = SpectrumEncoder.from_pretrained(tmp + "/m")
        spectra = synthetic_spectra(20, 2, seed=5)
        emb = model.encode(spectra)
    queries, library = emb[0::2], emb[1::2]
    top = np.argmax(queries @ library.T, axis=1)
    assert (top == np.arange(len(top))).mean() >= 0.9


def test_textualizer_is_owned_by_the_first_module(peak_folder, tmp_path):
    model = SpectrumEncoder.from_pretrained(peak_folder)
    assert model.textualizer == PEAK_TEXTUALIZER
    model.st[0].textualizer = replace(PEAK_TEXTUALIZER, top_n=7)
    again = SpectrumEncoder.from_pretrained(model.save_pretrained(tmp_path / "m7"))
    assert again.textualizer.top_n == 7
    assert len(again.texts(synthetic_spectra(1, 1, peaks=12))[0].split()) == 7


def test_folder_with_python_code_never_runs_it(peak_folder, tmp_path):
    import shutil

    crafted = tmp_path / "crafted"
    shutil.copytree(peak_folder, crafted)
    (crafted / "evil.py").write_text("raise SystemExit('ran code from a model folder')\n")
    modules = json.loads((crafted / "modules.json").read_text())
    modules[1]["type"] = "evil.Pooling"
    (crafted / "modules.json").write_text(json.dumps(modules))
    from llm4ms.errors import ConfigError

    with pytest.raises((ConfigError, ValueError, ImportError)):
        SpectrumEncoder.from_pretrained(crafted)
