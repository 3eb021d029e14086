#!/usr/bin/env bash
# with-token.sh CMD [ARGS...]
# Creates fresh SoftHSM2 tokens in a temporary directory, runs CMD with the
# environment pointing at them, and removes everything afterwards.
#   HSMC_TEST_TOKENS   space-separated labels to create (default: "test test2")
#   exported to CMD:   SOFTHSM2_CONF, HSMC_TEST_DIR, HSMC_TEST_MODULE,
#                      HSMC_TEST_PIN (user PIN), HSMC_TEST_PIN_FILE, HSMC_TEST_SO_PIN
set -euo pipefail
dir=$(mktemp -d "${TMPDIR:-/tmp}/hsmc-test.XXXXXX")
cleanup() { rm -rf "$dir"; }
trap cleanup EXIT
mkdir -p "$dir/tokens"
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
export HSMC_TEST_DIR="$dir"
export HSMC_TEST_MODULE="${HSMC_TEST_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
export HSMC_TEST_PIN=1234
export HSMC_TEST_SO_PIN=12345678
printf '%s\n' "$HSMC_TEST_PIN" > "$dir/pin"
chmod 600 "$dir/pin"
export HSMC_TEST_PIN_FILE="$dir/pin"
for label in ${HSMC_TEST_TOKENS:-test test2}; do
  softhsm2-util --init-token --free --label "$label" --pin "$HSMC_TEST_PIN" \
    --so-pin "$HSMC_TEST_SO_PIN" >/dev/null
done
"$@"
