#!/bin/bash
# Install check: configure, build and install hsmc into a temporary prefix,
# then build and run test/install-consumer against that prefix only, once
# through find_package(hsmc) and once through pkg-config.
set -eEuo pipefail

SRC=${HSMC_TEST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CC=${CC:-cc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
trap 'echo "FAIL: test_install (line $LINENO)"' ERR

die() { echo "FAIL: test_install: $*"; exit 1; }
# quiet <log> <cmd...>: run, show the log only when it fails.
quiet() {
  local log=$1; shift
  "$@" >"$log" 2>&1 || { cat "$log"; die "command failed: $*"; }
}

PREFIX="$TMP/prefix"
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
CONSUMER_CFLAGS="-std=c99 -Wall -Wextra -pedantic -Werror -Wstrict-prototypes"

echo "== build and install hsmc into $PREFIX"
quiet "$TMP/configure.log" cmake -S "$SRC" -B "$TMP/build" -DCMAKE_BUILD_TYPE=Release \
  -DHSMC_BUILD_TESTS=OFF -DHSMC_BUILD_CLI=OFF -DCMAKE_INSTALL_PREFIX=/opt/unused
quiet "$TMP/build.log" cmake --build "$TMP/build"
quiet "$TMP/install.log" cmake --install "$TMP/build" --prefix "$PREFIX"

LIB=$(find "$PREFIX" -name libhsmc.a | head -n 1)
PC=$(find "$PREFIX" -name hsmc.pc | head -n 1)
CFG=$(find "$PREFIX" -name hsmcConfig.cmake | head -n 1)
[ -n "$LIB" ] || die "libhsmc.a was not installed"
[ -n "$PC" ] || die "hsmc.pc was not installed"
[ -n "$CFG" ] || die "hsmcConfig.cmake was not installed"
for f in include/hsmc/hsmc.h include/hsmc/error.h include/hsmc/uri.h include/hsmc_config.h; do
  [ -f "$PREFIX/$f" ] || die "$f was not installed"
done
for f in hsmcConfigVersion.cmake hsmcTargets.cmake; do
  [ -f "$(dirname "$CFG")/$f" ] || die "$f was not installed beside hsmcConfig.cmake"
done
echo "  installed: $(cd "$PREFIX" && find . -type f | sed 's#^\./##' | sort | tr '\n' ' ')"

echo "== consumer through find_package(hsmc) (CMAKE_PREFIX_PATH)"
quiet "$TMP/consumer-configure.log" cmake -S "$SRC/test/install-consumer" -B "$TMP/consumer" \
  -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_C_FLAGS="$CONSUMER_CFLAGS"
quiet "$TMP/consumer-build.log" cmake --build "$TMP/consumer"
"$TMP/consumer/hsmc_consumer" || die "the find_package consumer failed"
# The package must not point back into the source or build tree.
if grep -rqF -e "$SRC" -e "$TMP/build" "$(dirname "$CFG")" "$PC"; then
  die "the installed package refers to the source or build tree"
fi

echo "== consumer through pkg-config (PKG_CONFIG_PATH)"
export PKG_CONFIG_PATH
PKG_CONFIG_PATH="$(dirname "$PC")"
pkg-config --exists hsmc || die "pkg-config does not find hsmc in $PKG_CONFIG_PATH"
echo "  pkg-config --cflags --libs hsmc: $(pkg-config --cflags --libs hsmc)"
echo "  pkg-config --static --libs hsmc: $(pkg-config --static --libs hsmc)"
# shellcheck disable=SC2046,SC2086  # word splitting of the flags is intended
"$CC" $CONSUMER_CFLAGS -o "$TMP/consumer-pc" "$SRC/test/install-consumer/main.c" \
  $(pkg-config --cflags --libs hsmc) || die "consumer does not build with pkg-config --cflags --libs"
"$TMP/consumer-pc" || die "the pkg-config consumer failed"
# shellcheck disable=SC2046,SC2086
"$CC" $CONSUMER_CFLAGS -o "$TMP/consumer-pc-static" "$SRC/test/install-consumer/main.c" \
  $(pkg-config --static --cflags --libs hsmc) || die "consumer does not build with pkg-config --static"
"$TMP/consumer-pc-static" || die "the pkg-config --static consumer failed"

echo "PASS: test_install"
