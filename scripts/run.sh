#!/usr/bin/env bash
# The main job on the default preset: set up, build, then train the `nano-switch` model (a
# small Switch-Transformer MoE) on tinyshakespeare into runs/nano-switch (downloaded when online; offline, point GREENMOE_DATA
# or --data-dir at a folder holding tinyshakespeare.txt). Extra arguments go to
# `greenmoe train` (e.g. --config configs/small.json --out runs/small).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
args=("$@")
has_out=0
has_config=0
for a in "${args[@]}"; do
  [[ $a == --out || $a == -o || $a == --out=* ]] && has_out=1
  [[ $a == --config || $a == -c || $a == --config=* ]] && has_config=1
done
((has_config)) || args+=(--config configs/nano-switch.json)
((has_out)) || args+=(--out runs/nano-switch)
exec build/greenmoe train "${args[@]}"
