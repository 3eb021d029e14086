#!/bin/bash
# CBOR cross-check: hsmc's codec against python3-cbor2 (see
# test/tools/cbor_cross.py). Builds test/tools/cbor_cross_driver.c with
# core/hsmc_cbor.c itself, under AddressSanitizer + UBSan when the
# compiler supports them, so no build-tree target is needed. Prints
# "N passed, N failed".
set -eEuo pipefail

SRC=${HSMC_TEST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
CC=${CC:-cc}
COUNT=${HSMC_CBOR_CROSS_COUNT:-400}
MUTANTS=${HSMC_CBOR_CROSS_MUTANTS:-25}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'echo "FAIL: test_cbor_cross (line $LINENO)"' ERR

die() { echo "FAIL: test_cbor_cross: $*"; exit 1; }

"$PY" -c 'import cbor2' 2>/dev/null || die "python3-cbor2 is missing (apt-get install python3-cbor2)"

CFLAGS=(-std=c99 -g -O1 -Wall -Wextra -pedantic -Werror -Wmissing-prototypes
        -Wstrict-prototypes -Wshadow -Wformat=2 -Wvla
        -I"$SRC/include" -I"$SRC/config" -I/usr/include/p11-kit-1)
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

echo 'int main(void) { return 0; }' >"$TMP/probe.c"
if "$CC" "${SAN[@]}" "$TMP/probe.c" -o "$TMP/probe" 2>/dev/null && "$TMP/probe"; then
  MODE="AddressSanitizer + UBSan"
else
  SAN=()
  MODE="no sanitizer available"
fi
"$CC" "${CFLAGS[@]}" ${SAN[@]+"${SAN[@]}"} -o "$TMP/cbor_cross_driver" \
  "$SRC/test/tools/cbor_cross_driver.c" "$SRC/core/hsmc_cbor.c" ||
  die "the driver does not build warning-free"
echo "driver built ($MODE)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
"$PY" "$SRC/test/tools/cbor_cross.py" "$TMP/cbor_cross_driver" "$COUNT" "$MUTANTS"
