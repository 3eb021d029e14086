#!/usr/bin/env bash
# Sets up a fresh machine and runs hsmc against a local SoftHSM2 token it
# creates itself under build/demo/ (the embedded default: no daemon, no
# hardware). Prints a few readable lines per step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" --target hsmc_cli enroll_server enroll_device enroll_setup at_rest >/dev/null
hsmc=$PWD/build/cli/hsmc

demo=$PWD/build/demo
rm -rf "$demo"
mkdir -p "$demo/tokens"
cat > "$demo/softhsm2.conf" <<CONF
directories.tokendir = $demo/tokens
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF=$demo/softhsm2.conf
export HSMC_MODULE=/usr/lib/softhsm/libsofthsm2.so
# A throw-away demo PIN, kept in a file readable only by us (never on argv).
umask 077
printf '%s\n' 1234 > "$demo/pin"
softhsm2-util --init-token --free --label gateway --pin "$(cat "$demo/pin")" \
  --so-pin 12345678 >/dev/null
export HSMC_TOKEN="pkcs11:token=gateway"

step() { printf '\n== %s\n' "$*"; }
step "Tokens the module offers"
"$hsmc" token list
step "What the token can really do (probed by calling, not by listing)"
"$hsmc" token test --pin-file "$demo/pin"
step "A device key made in the token by another tool (pkcs11-tool), as hsmc sees it"
pkcs11-tool --module "$HSMC_MODULE" --token-label gateway --login --pin "$(cat "$demo/pin")" \
  --keypairgen --key-type EC:prime256v1 --label device-key --id 01 >/dev/null 2>&1
"$hsmc" object list --pin-file "$demo/pin"
step "A wrong PIN is tried once and explained"
printf '0000\n' > "$demo/wrong-pin"
set +e
"$hsmc" object list --pin-file "$demo/wrong-pin"
echo "(exit code $?)"
set -e
step "Device mTLS enrollment (samples/enroll): gateway CA and device keys in two tokens"
HSMC_ENROLL_BIN=$PWD/build/samples/enroll bash samples/enroll/run_demo.sh "$demo/enroll"
step "Gateway at-rest encryption (samples/at_rest)"
HSMC_AT_REST_BIN=$PWD/build/samples/at_rest bash samples/at_rest/run_demo.sh "$demo/at_rest"

printf '\nDemo tokens kept in %s.\n' "$demo"
