#!/bin/bash
# Cross-compile check: the core, x509/ and the static port build warning-free for
# Cortex-M4 (arm-none-eabi, newlib headers) and, when a C library for it is
# installed, for RV32IMAC. Prints code/data/bss per object, the largest
# stack frame per object (-fstack-usage), and fails on any warning or on a
# reference to a heap allocator.
set -eEuo pipefail

SRC=${HSMC_TEST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'echo "FAIL: test_cortex_m4 (line $LINENO)"' ERR

die() { echo "FAIL: test_cortex_m4: $*"; exit 1; }

# Frames above this are flagged (DESIGN.md: nothing over ~256 bytes on the
# stack in core/port). Reported, not fatal: the budget is a review aid.
STACK_BUDGET=${HSMC_STACK_BUDGET:-256}
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
  local tt=0 td=0 tb=0 text data bss over=0 bytes
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
      over=$((over + 1))
    fi
    printf '%-26s %8d %8d %8d  %s\n' "$(basename "$obj")" "$text" "$data" "$bss" "${frame:-none}"
  done
  printf '%-26s %8d %8d %8d\n' "total ($label)" "$tt" "$td" "$tb"
  [ $over -eq 0 ] || echo "NOTE: $label: $over objects have a frame over the ${STACK_BUDGET}-byte stack budget"
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
