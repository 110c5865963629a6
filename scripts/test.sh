#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test with CTest. Extra arguments go to ctest
# (e.g. -L long for the longer tests, -R Tokenizer to pick some); none runs all but the long ones.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The report test renders report.html in headless Chromium.
if ! command -v chromium >/dev/null; then
  echo "test: installing chromium (for the report rendering test)"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium
fi
cmake --build build -j "$(nproc)" --target greenmoe_tests >/dev/null
cd build
# Without arguments: every test but the longer ones (label "long"; run them with -L long), then
# the file readers' fuzz test again under AddressSanitizer and UBSan (a small separate build of
# the readers alone; docs/fuzzing.md).
asan=0
if (($# == 0)); then set -- -LE long; asan=1; fi
ctest --output-on-failure -j 2 "$@"
if ((asan)); then
  cmake --build . -j "$(nproc)" --target greenmoe_fuzz_asan >/dev/null
  OMP_NUM_THREADS=1 ./greenmoe_fuzz_asan --gtest_brief=1
fi
