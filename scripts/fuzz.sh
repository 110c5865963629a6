#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang) into build-fuzz/ and runs each for a while on a
# corpus seeded from the test fixtures. Findings go to build-fuzz/findings/ (docs/fuzzing.md).
#   scripts/fuzz.sh [SECONDS] [TARGET...]   default: 60 s for each of fuzz/fuzz_*.cpp
# GREENMOE_FUZZ_BUILD names another build folder than build-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
(($#)) && shift
shared="$(realpath -m ../shared/data)"
build="${GREENMOE_FUZZ_BUILD:-build-fuzz}"
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (apt-get install clang)" >&2; exit 1; }
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
  -DGREENMOE_FUZZ=ON -DGREENMOE_BUILD_TESTS=OFF -DGREENMOE_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" >/dev/null

seeds() {  # seeds TARGET: the files its corpus starts from
  case "$1" in
    fuzz_safetensors) ls "$shared"/hf-fixtures/*.safetensors ;;
    fuzz_safetensors_index) ls "$shared"/hf-fixtures/*.index.json ;;
    fuzz_token_shard | fuzz_npy) ls tests/fixtures/npy/*.npy ;;
    fuzz_hellaswag) ls tests/fixtures/hellaswag/*.jsonl ;;
    fuzz_config_json) ls configs/*.json "$shared"/hf-fixtures/*_config.json ;;
    fuzz_log_jsonl) ls fuzz/seeds/log.jsonl ;;
    fuzz_tokenizer_json) ls "$shared"/hf-tokenizers/tiny_*.json ;;
    fuzz_parquet) ls tests/fixtures/parquet/*.parquet ;;
  esac 2>/dev/null || true
}

status=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$corpus" "$findings"
  while read -r seed; do [ -n "$seed" ] && cp -n "$seed" "$corpus/" ; done < <(seeds "$t")
  echo "fuzz: $t for ${seconds} s"
  # -timeout: an input that takes 10 s is a hang; -rss_limit_mb also caps one malloc, so an
  # allocation sized by a field of the input is a finding.
  if ! "$build/fuzz/$t" "$corpus" -max_total_time="$seconds" -max_len=16384 -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix="$findings/" -print_final_stats=1 \
      >"$build/$t.log" 2>&1; then
    echo "fuzz: $t found a problem: see $build/$t.log and $findings/" >&2
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/$t.log" | sed "s/^/  /"
done
exit "$status"
