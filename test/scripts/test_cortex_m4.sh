#!/bin/bash
# Cross-compile check: the core, x509/ and the static port build warning-free for
# Cortex-M4 (arm-none-eabi, newlib headers) and, when a C library for it is
# installed, for RV32IMAC. Prints code/data/bss per object, the largest
# stack frame per object (-fstack-usage), and fails on any warning or on a
# reference to a heap allocator or on a stack frame over the budget.
set -eEuo pipefail

SRC=${HSMC_TEST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'echo "FAIL: test_cortex_m4 (line $LINENO)"' ERR

die() { echo "FAIL: test_cortex_m4: $*"; exit 1; }

# A frame above this fails the test (DESIGN.md: nothing over ~256 bytes on
# the stack), on every target built, in every function (not only the
# largest frame of an object, which is what the table shows).
STACK_BUDGET=${HSMC_STACK_BUDGET:-256}
# function=bytes: the frames allowed over the budget, and up to what.
#   hsmc_probe_rsa_ops: the probe's one RSA signature/ciphertext buffer,
#   HSMC_PROBE_RSA_BITS / 8 = 256 bytes at the default RSA-2048, which the
#   token writes in one piece and no caller buffer can hold; plus saved
#   registers and alignment.
#   hsmc_imp_private: the RSA private-key import template (21 attributes,
#   252 bytes on 32-bit targets), which C_CreateObject takes in one piece.
STACK_ALLOW=${HSMC_STACK_ALLOW:-hsmc_probe_rsa_ops=272 hsmc_imp_private=288}
ALLOCATORS='malloc|calloc|realloc|free|strdup|strndup|__strdup|__strndup|reallocarray|aligned_alloc|posix_memalign|memalign|valloc|pvalloc'

shopt -s nullglob
SOURCES=("$SRC"/core/*.c)
[ -f "$SRC/port/static/hsmc_port_static.c" ] && SOURCES+=("$SRC/port/static/hsmc_port_static.c")
# x509/ (CSRs, CA, TLS with token keys) builds against the same trimmed
# mbedTLS configuration: firmware that issues CSRs or does mTLS links it.
SOURCES+=("$SRC"/x509/*.c)
shopt -u nullglob
[ ${#SOURCES[@]} -gt 0 ] || die "no core/*.c sources to build"

# mbedTLS headers (libmbedtls-dev) through a directory that holds nothing
# else: -I/usr/include would pull the host's libc headers into a bare-metal
# build. Debian's configuration is the host's (pthread threading, files,
# time); MBEDTLS_USER_CONFIG_FILE trims it the way a firmware config would.
MBEDTLS_HOST_INCLUDE=${HSMC_MBEDTLS_INCLUDE_DIR:-/usr/include}
[ -f "$MBEDTLS_HOST_INCLUDE/mbedtls/version.h" ] ||
  die "mbedtls/version.h not found in $MBEDTLS_HOST_INCLUDE (apt-get install libmbedtls-dev)"
MBEDTLS_FW="$TMP/mbedtls-include"
mkdir -p "$MBEDTLS_FW"
ln -s "$MBEDTLS_HOST_INCLUDE/mbedtls" "$MBEDTLS_FW/mbedtls"
cat >"$MBEDTLS_FW/hsmc_fw_mbedtls.h" <<'EOF_CFG'
/* Firmware-like trim of the host mbedTLS configuration (test only). */
#undef MBEDTLS_THREADING_C
#undef MBEDTLS_THREADING_PTHREAD
#undef MBEDTLS_FS_IO
#undef MBEDTLS_HAVE_TIME
#undef MBEDTLS_HAVE_TIME_DATE
#undef MBEDTLS_NET_C
#undef MBEDTLS_TIMING_C
#define MBEDTLS_NO_PLATFORM_ENTROPY
#undef MBEDTLS_HAVEGE_C
#undef MBEDTLS_PSA_ITS_FILE_C
#undef MBEDTLS_PSA_CRYPTO_STORAGE_C
EOF_CFG

COMMON=(-Os -std=c99 -ffunction-sections -fdata-sections -Wall -Wextra -pedantic
        -Werror -Wmissing-prototypes -Wstrict-prototypes -Wshadow -Wformat=2 -Wvla
        -fstack-usage -I"$SRC/include" -I"$SRC/config" -I"$SRC/port"
        -I"$SRC/core" -I/usr/include/p11-kit-1 -I"$MBEDTLS_FW"
        "-DMBEDTLS_USER_CONFIG_FILE=\"hsmc_fw_mbedtls.h\"")

# cross <label> <gcc> <size> <nm> <flags...>: compile, report, check.
cross() {
  local label=$1 cc=$2 size=$3 nm=$4; shift 4
  local out="$TMP/$label" src obj su frame bad
  local tt=0 td=0 tb=0 text data bss bytes overs
  mkdir -p "$out"
  for src in "${SOURCES[@]}"; do
    obj="$out/$(basename "$src" .c).o"
    "$cc" "$@" "${COMMON[@]}" -c "$src" -o "$obj" ||
      die "$label: ${src#"$SRC"/} does not build warning-free"
  done
  printf '%-26s %8s %8s %8s  %s\n' "$label object" text data bss "largest stack frame"
  for obj in "$out"/*.o; do
    read -r text data bss _ < <("$size" "$obj" | tail -n 1)
    tt=$((tt + text)); td=$((td + data)); tb=$((tb + bss))
    su="${obj%.o}.su"
    # .su lines: file:line:col:function<TAB>bytes<TAB>static|dynamic[,bounded]
    frame=$(sort -t $'\t' -k2,2n "$su" 2>/dev/null | tail -n 1 |
            awk -F'\t' '{n=split($1,a,":"); printf "%s B in %s (%s)", $2, a[n], $3}')
    bytes=${frame%% B*}
    if [ -n "$frame" ] && [ "$bytes" -gt "$STACK_BUDGET" ]; then
      frame="$frame  <-- over $STACK_BUDGET B"
    fi
    printf '%-26s %8d %8d %8d  %s\n' "$(basename "$obj")" "$text" "$data" "$bss" "${frame:-none}"
  done
  printf '%-26s %8d %8d %8d\n' "total ($label)" "$tt" "$td" "$tb"
  # Every frame of every object against the budget and the allowances.
  overs=$(cat "$out"/*.su | awk -F'\t' -v budget="$STACK_BUDGET" -v allow="$STACK_ALLOW" '
    BEGIN { n = split(allow, a, /[ ,]+/)
            for (i = 1; i <= n; i++) if (split(a[i], kv, "=") == 2) max[kv[1]] = kv[2] + 0 }
    $2 + 0 > budget {
      m = split($1, p, ":"); fn = p[m]; base = fn; sub(/\..*/, "", base)
      if (!(base in max) || $2 + 0 > max[base])
        printf "  %s B in %s (%s:%s)\n", $2, fn, p[m - 3], p[m - 2]
    }')
  [ -z "$overs" ] ||
    die "$label: frames over the ${STACK_BUDGET}-byte stack budget (STACK_ALLOW: $STACK_ALLOW):"$'\n'"$overs"
  echo "$label: no frame over ${STACK_BUDGET} bytes (allowed: $STACK_ALLOW)"
  bad=$("$nm" -A -u "$out"/*.o | awk '{print $NF, $1}' |
        grep -E "^($ALLOCATORS) " || true)
  [ -z "$bad" ] || die "$label: objects reference a heap allocator:"$'\n'"$bad"
  echo "$label: no heap allocator referenced by ${#SOURCES[@]} objects"
}

command -v arm-none-eabi-gcc >/dev/null ||
  die "arm-none-eabi-gcc not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi)"
echo "== Cortex-M4 (arm-none-eabi-gcc $(arm-none-eabi-gcc -dumpversion), -mcpu=cortex-m4 -mthumb -Os)"
cross cortex-m4 arm-none-eabi-gcc arm-none-eabi-size arm-none-eabi-nm -mcpu=cortex-m4 -mthumb

RV=riscv64-unknown-elf-gcc
RVFLAGS=(-march=rv32imac -mabi=ilp32 -ffreestanding)
# rv_has_libc <flags...>: do string.h and stdio.h exist for this target?
rv_has_libc() {
  printf '#include <string.h>\n#include <stdio.h>\nint hsmc_x;\n' |
    "$RV" "$@" -x c -c -o /dev/null - 2>/dev/null
}
echo "== RV32IMAC ($RV)"
if ! command -v "$RV" >/dev/null; then
  echo "SKIP: rv32imac: $RV not installed (apt-get install gcc-riscv64-unknown-elf)"
else
  # Debian's riscv64-unknown-elf-gcc ships without a C library; picolibc
  # (picolibc-riscv64-unknown-elf) provides one through its specs file.
  if ! rv_has_libc "${RVFLAGS[@]}" && rv_has_libc --specs=picolibc.specs "${RVFLAGS[@]}"; then
    RVFLAGS=(--specs=picolibc.specs "${RVFLAGS[@]}")
  fi
  if rv_has_libc "${RVFLAGS[@]}"; then
    cross rv32imac "$RV" riscv64-unknown-elf-size riscv64-unknown-elf-nm "${RVFLAGS[@]}"
  else
    echo "SKIP: rv32imac: $RV has no C library headers (string.h/stdio.h); apt-get install picolibc-riscv64-unknown-elf to enable"
  fi
fi

echo "PASS: test_cortex_m4"
