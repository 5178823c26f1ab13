"""MNTP masking, augmentation, mining, recall: fast unit tests, no model training."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from _training_helpers import synthetic_spectra
from llm4ms.spectrum import Spectrum
from llm4ms.training import augment
from llm4ms.training.mining import build_triples, mine_negatives, nearest_other, tanimoto_neighbors
from llm4ms.training.mntp import MNTPCollator, ensure_mask_token

IGNORE_INDEX = -100


@pytest.fixture(scope="module")
def tokenizer():
    from llm4ms.model.tiny import train_spectrum_tokenizer

    texts = [" ".join(f"{m}:{m % 7}" for m in range(30 + i, 300, 7)) for i in range(40)]
    return train_spectrum_tokenizer(texts, vocab_size=300)


def test_mntp_masking_statistics(tokenizer):
    text = " ".join(f"{m}:{m % 9}" for m in range(40, 250, 3))
    collator = MNTPCollator(tokenizer, mask_probability=0.2, seed=0)
    batch = collator([tokenizer(text, return_special_tokens_mask=True) for _ in range(64)])
    ids = tokenizer([text] * 64, return_tensors="pt")["input_ids"]
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
    masked = batch["labels"] != IGNORE_INDEX
    assert not (masked & special).any(), "special tokens (BOS) must never be masked"
    rate = masked.sum().item() / (~special).sum().item()
    assert 0.18 < rate < 0.22
    assert torch.equal(batch["labels"][masked], ids[masked])  # labels are the original ids
    to_mask = (batch["input_ids"] == tokenizer.mask_token_id) & masked
    unchanged = (batch["input_ids"] == ids) & masked
    assert 0.76 < to_mask.sum().item() / masked.sum().item() < 0.84
    assert 0.06 < unchanged.sum().item() / masked.sum().item() < 0.16  # 10 % kept + random hits
    assert torch.equal(batch["input_ids"][~masked], ids[~masked])


def test_mntp_masking_respects_padding(tokenizer):
    collator = MNTPCollator(tokenizer, mask_probability=0.5, seed=1)
    batch = collator([tokenizer(t, return_special_tokens_mask=True)
                      for t in ("40:1", " ".join(f"{m}:1" for m in range(40, 200, 2)))])
    pads = batch["attention_mask"] == 0
    assert pads.any() and not (batch["labels"][pads] != IGNORE_INDEX).any()


def test_ensure_mask_token_adds_and_resizes():
    from transformers import LlamaConfig, LlamaForCausalLM

    from llm4ms.model.tiny import train_spectrum_tokenizer

    tok = train_spectrum_tokenizer(["12:3 45:6 78:9"] * 5, vocab_size=120)
    tok.mask_token = None
    tok.add_special_tokens({})
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))
    before = model.get_input_embeddings().num_embeddings
    mask_id = ensure_mask_token(tok, model, preferred="@@not-in-vocab@@")
    assert tok.convert_ids_to_tokens(mask_id) == "<mask>" or mask_id >= before
    assert model.get_input_embeddings().num_embeddings == len(tok) >= mask_id + 1
    vocab_tok = train_spectrum_tokenizer(["a_b c_d"] * 5, vocab_size=120)
    vocab_tok.mask_token = None
    assert ensure_mask_token(vocab_tok, None, preferred="_") == vocab_tok.get_vocab()["_"]


def test_augmentations_are_reproducible_and_sane():
    s = synthetic_spectra(1, 1, peaks=20)[0]
    views = [augment.random_view(s, np.random.default_rng(5)) for _ in range(2)]
    assert np.array_equal(views[0].mz, views[1].mz) and np.allclose(views[0].intensities, views[1].intensities)
    other = augment.random_view(s, np.random.default_rng(6))
    assert not (np.array_equal(other.mz, views[0].mz) and np.allclose(other.intensities, views[0].intensities))
    assert views[0].intensities.max() == pytest.approx(s.intensities.max())
    assert set(views[0].mz) <= set(s.mz) and views[0].n_peaks >= 1
    cut = augment.low_mass_cutoff(s, np.random.default_rng(0), 100, 100)
    assert cut.mz.min() >= 100
    dropped = augment.drop_small_peaks(s, np.random.default_rng(0), max_relative=1.1, probability=1.0)
    assert dropped.n_peaks == 1  # everything "small": the base peak is kept
    tilt = augment.mz_tilt(s, np.random.default_rng(0), max_log_slope=1.0)
    ratio = tilt.intensities / s.intensities
    assert np.all(np.diff(np.log(ratio)) * np.sign(np.log(ratio[-1] / ratio[0])) >= -1e-9)  # monotone in m/z


def test_isotope_jitter_only_touches_isotope_peaks():
    s = Spectrum([50, 100, 101, 102, 200], [0.3, 1.0, 0.2, 0.05, 0.5])
    out = augment.isotope_jitter(s, np.random.default_rng(0), sigma=0.5, shift_probability=0.0)
    changed = ~np.isclose(out.intensities, s.intensities)
    assert changed[2] and changed[3] and not changed[[0, 1, 4]].any()


def test_nearest_other_excludes_same_compound_and_is_distinct():
    vectors = np.array([[1, 0], [1, 0.01], [0.9, 0.1], [0.9, 0.11], [0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = ["A", "A", "B", "B", "C"]
    out = nearest_other(vectors, keys, k=2)
    assert list(out[0]) == [2, 4]  # B (its nearest spectrum), then C; never A, never B twice
    assert all(keys[j] != keys[i] for i, row in enumerate(out) for j in row if j >= 0)


def test_tanimoto_neighbors_hand_case():
    fps = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 1]], dtype=np.float32)
    out = tanimoto_neighbors(fps, k=1)
    assert out[:, 0].tolist() == [1, 0, 1]  # T(0,1)=2/3 > T(0,2)=0; T(2,1)=1/4 > T(2,0)=0


def test_build_triples_positives_and_negatives():
    spectra = synthetic_spectra(6, 2) + synthetic_spectra(3, 1, seed=9)[:3]
    triples = build_triples(spectra, num_negatives=2, negative_method="cosine", seed=0)
    assert len(triples) == len(spectra)
    for t in triples:
        assert t["positive"].inchikey14 == t["anchor_key"] == t["anchor"].inchikey14
        assert t["positive"] is not t["anchor"]
        assert len(t["negatives"]) == 2 and all(n.inchikey14 != t["anchor_key"] for n in t["negatives"])


def test_mine_negatives_by_tanimoto_uses_structures():
    smiles = ["CCO", "CCCO", "c1ccccc1", "c1ccccc1C"]
    spectra = [Spectrum([40.0, 50.0 + i], [1.0, 0.5], {"inchikey": f"KEYKEYKEYKEY{i:02d}-A", "smiles": s})
               for i, s in enumerate(smiles)]
    neg = mine_negatives(spectra, 1, "tanimoto")
    assert neg[:, 0].tolist() == [1, 0, 3, 2]
