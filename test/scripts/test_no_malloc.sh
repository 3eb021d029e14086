#!/bin/bash
# No heap in the library: no object of libhsmc.a (nor of the other hsmc
# libraries in the build tree, e.g. the static-port test library) may
# reference a heap allocator. Caller-owned memory is a design rule
# (DESIGN.md section 2), so this is checked on the build products.
set -eEuo pipefail

BIN=${HSMC_TEST_BINARY_DIR:?HSMC_TEST_BINARY_DIR must point at the build directory}
trap 'echo "FAIL: test_no_malloc (line $LINENO)"' ERR

die() { echo "FAIL: test_no_malloc: $*"; exit 1; }

ALLOCATORS='malloc|calloc|realloc|free|strdup|strndup|__strdup|__strndup|reallocarray|aligned_alloc|posix_memalign|memalign|valloc|pvalloc'
NM=${NM:-nm}

[ -f "$BIN/libhsmc.a" ] || die "$BIN/libhsmc.a not found (build the hsmc target first)"
LIBS=("$BIN/libhsmc.a")
# Other archives built from the same sources with another port.
while IFS= read -r lib; do
  LIBS+=("$lib")
done < <(find "$BIN" -name 'libhsmc_*.a' -not -path '*/CMakeFiles/*' | sort)

status=0
for lib in "${LIBS[@]}"; do
  members=$(ar t "$lib")
  [ -n "$members" ] || die "$lib has no objects"
  echo "${lib#"$BIN"/}: $(echo "$members" | wc -l) objects: $(echo "$members" | tr '\n' ' ')"
  # nm -A prints "archive:member: U symbol" for every undefined symbol.
  bad=$("$NM" -A -u "$lib" | awk '{print $NF, $1}' | grep -E "^($ALLOCATORS) " || true)
  if [ -n "$bad" ]; then
    echo "  heap allocator referenced (symbol, archive:member):"
    while IFS= read -r line; do echo "    $line"; done <<<"$bad"
    status=1
  fi
done
[ $status -eq 0 ] || die "heap allocation found in the library"
echo "PASS: test_no_malloc (${#LIBS[@]} archives, none references ${ALLOCATORS//|/ })"
