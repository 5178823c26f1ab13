#!/usr/bin/env bash
# Embed a spectra file into a library with timing and peak memory recorded (GNU time), then print the summary.
#   bash benchmarks/embed_library.sh SPECTRA.msp OUT_DIR [MODEL] [extra llm4ms embed flags...]
set -euo pipefail
spectra=$1; out=$2; model=${3:-}; shift $(( $# < 3 ? $# : 3 ))
log="${out%/}.embed_time.txt"
mkdir -p "$(dirname "$out")"
/usr/bin/time -v llm4ms embed --spectra "$spectra" --out "$out" ${model:+--model "$model"} "$@" 2> >(tee "$log" >&2)
grep -E "Elapsed|Maximum resident" "$log"
