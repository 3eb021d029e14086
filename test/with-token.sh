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
# softhsm_dir, pin_file, new_token (SO PIN 12345678): shared with the test scripts.
. "$(dirname "$0")/scripts/cli_lib.sh"
softhsm_dir "$dir"
export HSMC_TEST_DIR="$dir"
export HSMC_TEST_MODULE="$MODULE"
export HSMC_TEST_PIN=1234
export HSMC_TEST_SO_PIN=12345678
pin_file "$dir/pin" "$HSMC_TEST_PIN"
export HSMC_TEST_PIN_FILE="$dir/pin"
for label in ${HSMC_TEST_TOKENS:-test test2}; do
  new_token "$label" "$HSMC_TEST_PIN"
done
"$@"
