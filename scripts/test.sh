#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test with CTest. Extra arguments go to ctest
# (e.g. -L long for the longer tests, -R Tokenizer to pick some).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --build build -j "$(nproc)" --target greenmoe_tests >/dev/null
cd build
ctest --output-on-failure -j 2 "$@"
