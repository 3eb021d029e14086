#!/bin/bash
# Worst-case stack per public call on Cortex-M4 (DESIGN.md section 2: stack
# per public call is measured and published). Compiles the core and the
# static port with -fstack-usage -fcallgraph-info=su and lets
# test/tools/stack_report.py walk the merged call graph: a markdown table of
# every exported hsmc_* function, its deepest path and its bytes (hsmc's own
# frames plus assumed costs of libc/libgcc/mbedTLS calls). Sizes never fail
# this test (WARN lines flag calls over 1024 bytes); a failed compile, a
# malformed graph or a report tool that miscounts a known graph does.
set -euo pipefail

SRC=${HSMC_TEST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
REPORT="$SRC/test/tools/stack_report.py"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

die() { echo "FAIL: test_stack: $*"; exit 1; }

command -v arm-none-eabi-gcc >/dev/null ||
  die "arm-none-eabi-gcc not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
[ -f "$REPORT" ] || die "missing $REPORT"

shopt -s nullglob
SOURCES=("$SRC"/core/*.c)
[ -f "$SRC/port/static/hsmc_port_static.c" ] && SOURCES+=("$SRC/port/static/hsmc_port_static.c")
shopt -u nullglob
[ ${#SOURCES[@]} -gt 0 ] || die "no core/*.c sources to build"

CFLAGS=(-mcpu=cortex-m4 -mthumb -Os -std=c99 -ffunction-sections -fdata-sections
        -fstack-usage -fcallgraph-info=su -I"$SRC/include" -I"$SRC/config"
        -I"$SRC/port" -I"$SRC/core" -I/usr/include/p11-kit-1)

# mbedTLS headers come through a directory holding only a symlink to them:
# -I/usr/include would pull the host's libc headers into a bare-metal build.
# Debian's mbedTLS configuration is the host's (pthread threading, files,
# time), which newlib cannot compile; a user config file kept outside that
# directory trims it the way a firmware configuration would.
if grep -lqE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]mbedtls/' "${SOURCES[@]}"; then
  [ -f /usr/include/mbedtls/version.h ] ||
    die "core includes mbedTLS but /usr/include/mbedtls is missing (apt-get install libmbedtls-dev)"
  mkdir -p "$TMP/mbedtls-include" "$TMP/mbedtls-config"
  ln -s /usr/include/mbedtls "$TMP/mbedtls-include/mbedtls"
  cat >"$TMP/mbedtls-config/hsmc_fw_mbedtls.h" <<'EOF_CFG'
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
  CFLAGS+=(-I"$TMP/mbedtls-include"
           "-DMBEDTLS_USER_CONFIG_FILE=\"$TMP/mbedtls-config/hsmc_fw_mbedtls.h\"")
fi

# The report tool first proves itself on a graph with known answers: a
# cross-object call, an assumed external, a pointer call, a cycle.
mkdir -p "$TMP/selftest"
cat >"$TMP/selftest/a.ci" <<'EOF_CI'
graph: { title: "a.c"
node: { title: "hsmc_top" label: "hsmc_top\na.c:1:5\n40 bytes (static)" }
node: { title: "a.c:helper" label: "helper\na.c:9:12\n24 bytes (static)" }
node: { title: "hsmc_leaf" label: "hsmc_leaf\nb.c:1:5\n8 bytes (static)" shape : ellipse }
node: { title: "snprintf" label: "snprintf\nstdio.h:1:1" shape : ellipse }
node: { title: "__indirect_call" label: "Indirect Call Placeholder" shape : ellipse }
edge: { sourcename: "hsmc_top" targetname: "a.c:helper" label: "a.c:3:5" }
edge: { sourcename: "hsmc_top" targetname: "hsmc_leaf" label: "a.c:4:5" }
edge: { sourcename: "a.c:helper" targetname: "snprintf" }
edge: { sourcename: "a.c:helper" targetname: "__indirect_call" label: "a.c:10:5" }
node: { title: "hsmc_loop" label: "hsmc_loop\na.c:20:5\n16 bytes (static)" }
node: { title: "a.c:walk" label: "walk\na.c:30:12\n32 bytes (static)" }
edge: { sourcename: "hsmc_loop" targetname: "a.c:walk" label: "a.c:21:5" }
edge: { sourcename: "a.c:walk" targetname: "a.c:walk" label: "a.c:31:5" }
}
EOF_CI
cat >"$TMP/selftest/b.ci" <<'EOF_CI'
graph: { title: "b.c"
node: { title: "hsmc_leaf" label: "hsmc_leaf\nb.c:1:5\n8 bytes (static)" }
node: { title: "hsmc__internal" label: "hsmc__internal\nb.c:5:5\n500 bytes (static)" }
edge: { sourcename: "hsmc_leaf" targetname: "memcpy" }
}
EOF_CI
self=$("$PY" "$REPORT" --assume snprintf=400 "$TMP/selftest/a.ci" "$TMP/selftest/b.ci") ||
  die "stack_report.py failed on the self-test graph"
grep -qF '| hsmc_top | 464 | 400 | hsmc_top > helper > snprintf (assumed) | + module/callback stack |' <<<"$self" ||
  die "stack_report.py miscounts the self-test graph:"$'\n'"$self"
grep -qF '| hsmc_leaf | 24 | 16 | hsmc_leaf > memcpy (assumed) | no |' <<<"$self" ||
  die "stack_report.py miscounts a leaf:"$'\n'"$self"
if ! grep -qF '| hsmc_loop | unbounded (recursion) |' <<<"$self" ||
   ! grep -qF 'RECURSION: cycle through walk > walk' <<<"$self"; then
  die "stack_report.py misses a recursion:"$'\n'"$self"
fi
! grep -q 'hsmc__internal' <<<"$self" || die "stack_report.py lists an internal hsmc__ function"
printf 'graph: { title: "x.c"\nnode: { title: "hsmc_x" label: "hsmc_x" }\n}\n' >"$TMP/selftest/bad.ci"
rc=0; "$PY" "$REPORT" "$TMP/selftest/bad.ci" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || die "stack_report.py accepted a node without a stack size (exit $rc)"

mkdir -p "$TMP/obj"
cd "$TMP/obj"
for src in "${SOURCES[@]}"; do
  # -fcallgraph-info and -fstack-usage name their files after the object.
  arm-none-eabi-gcc "${CFLAGS[@]}" -c "$src" -o "$(basename "$src" .c).o" ||
    die "${src#"$SRC"/} does not build for Cortex-M4"
done

echo "== Cortex-M4 worst-case stack per public call" \
     "(arm-none-eabi-gcc $(arm-none-eabi-gcc -dumpversion), -mcpu=cortex-m4 -mthumb -Os," \
     "-fcallgraph-info=su)"
CI=()
for src in "${SOURCES[@]}"; do CI+=("$(basename "$src" .c).ci"); done
rc=0
"$PY" "$REPORT" "${CI[@]}" || rc=$?
[ $rc -eq 0 ] || die "stack_report.py rejected the call graph (exit $rc)"
echo "PASS: test_stack"
