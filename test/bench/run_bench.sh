#!/usr/bin/env bash
# run_bench.sh [hsmc_bench options...]
# Runs hsmc_bench against a fresh SoftHSM2 token made in a temporary
# directory (removed afterwards) and prints its lines:
#   op=<name> n=<N> ops_per_s=<x> us_per_op=<y> raw_ops_per_s=<r> ratio=<x/r>
# Environment:
#   HSMC_BENCH      the hsmc_bench binary (default: build-bench, then build)
#   HSMC_TEST_MODULE PKCS#11 module (default SoftHSM2)
# Example: bash test/bench/run_bench.sh --op ecdsa-p256-sign --seconds 3
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench=${HSMC_BENCH:-}
if [ -z "$bench" ]; then
  for b in "$src/build-bench/test/bench/hsmc_bench" "$src/build/test/bench/hsmc_bench"; do
    if [ -x "$b" ]; then bench=$b; break; fi
  done
fi
if [ -z "$bench" ] || [ ! -x "$bench" ]; then
  echo "run_bench.sh: hsmc_bench not found; build it (cmake -DCMAKE_BUILD_TYPE=Release) or set HSMC_BENCH" >&2
  exit 2
fi
command -v softhsm2-util >/dev/null || { echo "run_bench.sh: softhsm2-util missing (apt-get install softhsm2)" >&2; exit 2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/hsmc-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/tokens"
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
printf '1234\n' > "$dir/pin"
chmod 600 "$dir/pin"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null

"$bench" --token bench --pin-file "$dir/pin" \
  --module "${HSMC_TEST_MODULE:-/usr/lib/softhsm/libsofthsm2.so}" "$@"
