#!/bin/bash
# Kconfig check: the Kconfig file parses without warnings, declares every
# knob of config/hsmc_config.h under the same name with the header's
# defaults, and its values reach the HSMC_ macros when the generated
# autoconf header is forced in the way Zephyr does it (-imacros). The core
# and the static port must then build warning-free with the default and
# with a non-default configuration.
set -eEuo pipefail

SRC=${HSMC_TEST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
CC=${CC:-gcc}
GEN="$SRC/test/scripts/kconfig_gen.py"
HDR="$SRC/config/hsmc_config.h"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'echo "FAIL: test_kconfig (line $LINENO)"' ERR

die() { echo "FAIL: test_kconfig: $*"; exit 1; }

"$PY" -c 'import kconfiglib' 2>/dev/null ||
  die "python3-kconfiglib is missing (apt-get install python3-kconfiglib)"

shopt -s nullglob
SOURCES=("$SRC"/core/*.c)
[ -f "$SRC/port/static/hsmc_port_static.c" ] && SOURCES+=("$SRC/port/static/hsmc_port_static.c")
shopt -u nullglob
[ ${#SOURCES[@]} -gt 0 ] || die "no core/*.c sources to build"

CFLAGS=(-std=c99 -Wall -Wextra -pedantic -Werror -Wmissing-prototypes
        -Wstrict-prototypes -Wshadow -Wformat=2 -Wvla
        -I"$SRC/include" -I"$SRC/config" -I"$SRC/port" -I"$SRC/core"
        -I/usr/include/p11-kit-1)

# gen <name> [fragment]: autoconf.h, expected.txt and probe.c in $TMP/<name>.
gen() {
  mkdir -p "$TMP/$1"
  "$PY" "$GEN" "$SRC/Kconfig" "$HDR" "$TMP/$1" ${2:+"$2"} ||
    die "kconfig_gen rejected configuration '$1'"
}

# probe <name> [-imacros file]: print every knob as the C code sees it.
probe() {
  local name=$1; shift
  "$CC" "${CFLAGS[@]}" "$@" -o "$TMP/$name/probe" "$TMP/$name/probe.c" ||
    die "probe program for '$name' does not build"
  "$TMP/$name/probe"
}

# build <name>: every source with that configuration's autoconf forced in.
build() {
  local name=$1 src n=0
  mkdir -p "$TMP/$name/obj"
  for src in "${SOURCES[@]}"; do
    "$CC" "${CFLAGS[@]}" -imacros "$TMP/$name/autoconf.h" -c "$src" \
      -o "$TMP/$name/obj/$(basename "$src" .c).o" ||
      die "${src#"$SRC"/} does not build with the '$name' Kconfig configuration"
    n=$((n + 1))
  done
  echo "  built $n sources with the '$name' configuration"
}

echo "== default configuration (CONFIG_HSMC=y, everything else default)"
gen default
probe default >"$TMP/default/header.txt"
diff -u "$TMP/default/header.txt" "$TMP/default/expected.txt" ||
  die "Kconfig defaults differ from config/hsmc_config.h (- header, + Kconfig)"
echo "  Kconfig defaults equal the header defaults ($(wc -l <"$TMP/default/expected.txt") knobs)"
probe default -imacros "$TMP/default/autoconf.h" >"$TMP/default/got.txt"
diff -u "$TMP/default/expected.txt" "$TMP/default/got.txt" ||
  die "default Kconfig values did not reach the HSMC_ macros"
build default

echo "== non-default configuration"
cat >"$TMP/custom.conf" <<'EOF'
CONFIG_HSMC_PORT_STATIC=y
CONFIG_HSMC_MAX_SESSIONS=2
CONFIG_HSMC_MAX_SLOTS=4
CONFIG_HSMC_MAX_OBJECTS=3
CONFIG_HSMC_URI_MAX_LEN=256
CONFIG_HSMC_DETAIL_LEN=64
CONFIG_HSMC_MODULE_MUTEX_POOL=2
CONFIG_HSMC_SESSION_WAIT_MS=0
# CONFIG_HSMC_THREADS is not set
CONFIG_HSMC_LOG_LEVEL=-1
CONFIG_HSMC_ASSERTS=y
EOF
gen custom "$TMP/custom.conf"
probe custom -imacros "$TMP/custom/autoconf.h" >"$TMP/custom/got.txt"
diff -u "$TMP/custom/expected.txt" "$TMP/custom/got.txt" ||
  die "non-default Kconfig values did not reach the HSMC_ macros"
for want in HSMC_MAX_SESSIONS=2 HSMC_THREADS=0 HSMC_LOG_LEVEL=-1 HSMC_ASSERTS=1; do
  grep -qx "$want" "$TMP/custom/got.txt" || die "expected $want in the compiled values"
done
echo "  values reached the macros: $(grep -E 'SESSIONS|THREADS|LOG_LEVEL|ASSERTS' "$TMP/custom/got.txt" | tr '\n' ' ')"
build custom

echo "== the helper rejects bad input"
printf 'CONFIG_HSMC_MAX_SESSIONS=0\n' >"$TMP/range.conf"
mkdir -p "$TMP/range"
if "$PY" "$GEN" "$SRC/Kconfig" "$HDR" "$TMP/range" "$TMP/range.conf" 2>/dev/null; then
  die "an out-of-range CONFIG_HSMC_MAX_SESSIONS=0 was accepted"
fi
echo "  out-of-range value rejected"

echo "PASS: test_kconfig"
