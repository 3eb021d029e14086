#!/bin/bash
# mbedTLS heap peak of one CSR and of one TLS handshake with a token key.
#
# Debian's mbedTLS 2.28 is built without MBEDTLS_PLATFORM_MEMORY and
# MBEDTLS_MEMORY_BUFFER_ALLOC_C, so mbedTLS calls calloc/free directly and
# cannot be given a counting allocator. The measurement is therefore made
# with valgrind's massif on the test programs in their measuring mode
# (HSMC_X509_MEASURE=csr: one P-256 CSR; =tls: one TLS 1.2 client handshake
# with a P-256 token key against openssl s_server, including the parsing
# of the own chain and the root that the handshake needs): every massif
# snapshot is detailed, with the direct caller of each allocation, and the
# bytes whose caller lies in libmbedcrypto/libmbedx509/libmbedtls are summed
# per snapshot; the largest sum is the mbedTLS peak (requested bytes, without
# malloc's own overhead). SoftHSM2's and OpenSSL's heap in the same process
# is left out that way. hsmc itself allocates nothing.
#
# Fails when a run does not complete or the figures are implausible; the
# figures are printed for the record.
set -eEuo pipefail

SRC=${HSMC_TEST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${HSMC_TEST_BINARY_DIR:?HSMC_TEST_BINARY_DIR must point at the build directory}
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'echo "FAIL: test_x509_heap (line $LINENO)"' ERR

die() { echo "FAIL: test_x509_heap: $*"; exit 1; }

command -v valgrind >/dev/null || { echo "SKIP: test_x509_heap: valgrind not installed (apt-get install valgrind)"; exit 0; }
for t in test_x509_csr test_tls; do
  [ -x "$BIN/test/$t" ] || die "$BIN/test/$t not built"
done
# valgrind cannot run AddressSanitizer binaries.
# (grep reads all of nm's output: with -q, nm could die of SIGPIPE and
# pipefail would turn the match into a failure.)
if nm "$BIN/test/test_tls" 2>/dev/null | grep '__asan_init' >/dev/null; then
  echo "SKIP: test_x509_heap: sanitizer build (valgrind cannot run it)"
  exit 0
fi

# peak <massif file>: "<mbedTLS peak bytes> <snapshots> <process heap peak>"
peak() {
  "$PY" - "$1" <<'EOF'
import re, sys
node = re.compile(r"^ n\d+: (\d+) (.*)$")   # depth 1: the direct caller
best = cur = snaps = total = 0
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("snapshot="):
        best = max(best, cur)
        cur = 0
        snaps += 1
    elif line.startswith("mem_heap_B="):
        total = max(total, int(line.split("=", 1)[1]))
    else:
        m = node.match(line)
        if m and "libmbed" in m.group(2):
            cur += int(m.group(1))
best = max(best, cur)
print(best, snaps, total)
EOF
}

# measure <mode> <program>: run it under massif with fresh tokens.
measure() {
  local mode=$1 prog=$2 out="$TMP/$1.massif" log="$TMP/$1.log"
  if ! HSMC_X509_MEASURE=$mode TMPDIR=$TMP bash "$SRC/test/with-token.sh" \
      valgrind --tool=massif --massif-out-file="$out" --time-unit=B --detailed-freq=1 \
      --max-snapshots=1000 --threshold=0 --depth=1 --peak-inaccuracy=0 \
      "$BIN/test/$prog" >"$log" 2>&1; then
    cat "$log" >&2
    die "$prog (HSMC_X509_MEASURE=$mode) failed under valgrind"
  fi
  grep HSMC_MEASURE_END "$log" >/dev/null || { cat "$log" >&2; die "$prog did not finish its $mode"; }
  peak "$out"
}

# Not in a subshell, so that die() ends the script.
measure csr test_x509_csr >"$TMP/csr.res"
measure tls test_tls >"$TMP/tls.res"
read -r csr_peak csr_snaps csr_total <"$TMP/csr.res"
read -r tls_peak tls_snaps tls_total <"$TMP/tls.res"

echo "mbedTLS heap peak, one CSR (P-256 token key; 7 subject fields, 6 SANs, KU, EKU): $csr_peak bytes"
echo "  (massif, $csr_snaps detailed snapshots; whole process incl. SoftHSM2: $csr_total bytes)"
echo "mbedTLS heap peak, one TLS 1.2 client handshake (P-256 token key):     $tls_peak bytes"
echo "  (massif, $tls_snaps detailed snapshots; whole process incl. SoftHSM2: $tls_total bytes;"
echo "   includes mbedTLS's two 16 KiB record buffers and the parsed chain and root)"

[ "$csr_peak" -gt 0 ] && [ "$csr_peak" -lt 65536 ] || die "implausible CSR figure $csr_peak"
[ "$tls_peak" -gt 16384 ] && [ "$tls_peak" -lt 262144 ] || die "implausible TLS figure $tls_peak"
echo "PASS: test_x509_heap"
