#!/usr/bin/env bash
# Rebuild the shipped MS/MS encoder (llm4ms/resources/msms_model) from a MassBank-data checkout, CPU only, offline.
#
#   git clone --depth 1 --branch 2025.05.1 https://github.com/MassBank/MassBank-data
#   bash data_prep/build_msms_model.sh MassBank-data        # about an hour on 2 CPU cores
#
# Every step resumes or skips finished outputs. Only TRAIN-split compounds are trained on, VALIDATION drives every
# choice, TEST compounds are read once by the final benchmark (step 5).
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT="${1:?usage: build_msms_model.sh MASSBANK_DATA_CHECKOUT}"
export PYTHONPATH=. HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
SETS=work_data/msms/all
MODEL=runs/msms_peak/supervised/final

# 1. MS2 spectra with a structure, cleaned, split by compound (train/validation/test.mgf + summary.json).
[ -f "$SETS/summary.json" ] || python data_prep/build_msms_sets.py "$CHECKOUT" "$SETS" --clean

# 2. Training triples (replicates across energies/instruments, isomer-window hard negatives) and validation sets.
[ -f work_data/msms/training/supervised_triples.jsonl ] || \
    python data_prep/build_msms_training_sets.py "$SETS" work_data/msms/training

# 3. The peak-token model, supervised contrastive; the best validation checkpoint is kept.
python recipes/supervised.py recipes/configs/msms_peak_supervised.json

# 4. Fusion weight with the accurate-mass score (validation), then the validation table of every method.
python data_prep/fit_msms_ranking.py "$MODEL" --sets "$SETS" --name msms_model --write
python benchmarks/msms_recall.py --sets "$SETS" --split validation \
    --methods llm4ms,llm4ms_embedding,cosine_hr,modified_cosine,entropy_hr,spec2vec_hr --model "$MODEL"

# 5. Test, once, after every choice is made.
python benchmarks/msms_recall.py --sets "$SETS" --split test \
    --methods llm4ms,llm4ms_embedding,cosine_hr,modified_cosine,entropy_hr,spec2vec_hr --model "$MODEL"

# 6. Ship: copy the model with its training record, licence and figures (the card is generated from them).
python data_prep/ship_msms_model.py "$MODEL"
