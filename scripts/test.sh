#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole hsmc test suite: a normal
# build, then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
#   HSMC_SKIP_SANITIZE=1  skip the sanitizer pass (quicker local runs)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (release) and test"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${HSMC_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== build with ASan+UBSan and test"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHSMC_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE no-sanitize
fi
