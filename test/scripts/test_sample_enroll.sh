#!/usr/bin/env bash
# samples/enroll end to end: setup.sh (two SoftHSM2 tokens, PKI, bootstrap
# identity), enroll_server in the background on a free 127.0.0.1 port,
# enroll_device. Checks the issued certificate with openssl, finds it on
# the device token with pkcs11-tool, checks that the second connection was
# authenticated with the operational identity, and that each refusal
# (unknown bootstrap, replayed nonce, CSR key != signer, device id taken)
# comes back as the CBOR error with exit code 3 and a clear message.
# Env: HSMC_TEST_BINARY_DIR (build dir), HSMC_TEST_SOURCE_DIR, HSMC_TEST_MODULE.
set -euo pipefail

src=${HSMC_TEST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${HSMC_TEST_BINARY_DIR:-$src/build}/samples/enroll
if [ ! -x "$bin/enroll_server" ]; then
  echo "skip: samples not built ($bin; HSMC_BUILD_SAMPLES=OFF?)"
  echo "0 passed, 0 failed"
  exit 0
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/hsmc-enroll-test.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

# check_cmd, has, ok/bad: shared by the test scripts.
# shellcheck source=SCRIPTDIR/cli_lib.sh
. "$src/test/scripts/cli_lib.sh"

# ---- setup -------------------------------------------------------------------
export HSMC_ENROLL_BIN=$bin HSMC_MODULE=$MODULE
if ! "$src/samples/enroll/setup.sh" "$dir" --rogue > "$dir/setup.log" 2>&1; then
  cat "$dir/setup.log"
  bad "setup.sh"
  summary
  exit 1
fi
ok "setup.sh made tokens, PKI and the bootstrap identity"
export SOFTHSM2_CONF=$dir/softhsm2.conf
check_cmd "root, issuing and factory CA chain verify with openssl" \
  bash -c "openssl verify -CAfile '$dir/root.pem' '$dir/issuing.pem' '$dir/factory.pem' >/dev/null"

check_cmd "enroll_server --help" bash -c "'$bin/enroll_server' --help | grep -q -- --factory"
check_cmd "enroll_device --help" bash -c "'$bin/enroll_device' --help | grep -q -- --bootstrap-key"
"$bin/enroll_device" --bogus > /dev/null 2>&1 && rc=0 || rc=$?
check_cmd "unknown option: exit code 1" test "$rc" = 1

"$bin/enroll_server" --token gateway --pin-file "$dir/gateway.pin" --root "$dir/root.pem" \
  --factory "$dir/factory.pem" --state "$dir/state" --port 0 --port-file "$dir/port" \
  > "$dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
if [ ! -s "$dir/port" ]; then
  cat "$dir/server.log"
  bad "server started"
  summary
  exit 1
fi
ok "server listening on 127.0.0.1:$(cat "$dir/port")"

# device ARGS... > $dir/out (stdout + stderr); sets rc.
device() {
  "$bin/enroll_device" --token device --pin-file "$dir/device.pin" --root "$dir/root.pem" \
    --port "$(cat "$dir/port")" "$@" > "$dir/out" 2>&1 && rc=0 || rc=$?
}
show_on_fail() { [ "$1" = ok ] || { echo "---- device output:"; cat "$dir/out"; }; }

# ---- happy path ----------------------------------------------------------------
device --cert-out "$dir/device.pem"
if [ "$rc" = 0 ]; then ok "device enrolled (exit 0)"; else bad "device enrolled (exit $rc)"; show_on_fail x; fi
cp "$dir/out" "$dir/happy.out"
check_cmd "device: bootstrap handshake verified the gateway" \
  has "$dir/happy.out" "handshake as bootstrap identity (bootstrap): ok, TLSv1.2"
check_cmd "device: certificate stored next to the key" \
  has "$dir/happy.out" "certificate stored on token device next to key device-mtls"
check_cmd "device: prints subject and issuer" \
  has "$dir/happy.out" "enrolled: subject O=hsmc sample devices, CN=dev-0001, issuer O=hsmc sample, CN=hsmc Sample Issuing CA"
check_cmd "device: second handshake with the operational identity" \
  has "$dir/happy.out" "handshake as operational identity (device-mtls): ok"
check_cmd "device: gateway confirms the operational identity" \
  has "$dir/happy.out" "gateway confirms: device dev-0001 authenticated as O=hsmc sample devices, CN=dev-0001"
check_cmd "server: enrolled dev-0001" has "$dir/server.log" "enrolled device dev-0001: subject O=hsmc sample devices, CN=dev-0001"
check_cmd "server: second connection authenticated with the operational certificate" \
  has "$dir/server.log" "authenticated device dev-0001 with its operational certificate: subject O=hsmc sample devices, CN=dev-0001, issuer O=hsmc sample, CN=hsmc Sample Issuing CA"

# openssl verify of the issued certificate (root + intermediate), as a client certificate.
check_cmd "openssl verify -CAfile root.pem -untrusted issuing.pem device.pem" \
  bash -c "openssl verify -CAfile '$dir/root.pem' -untrusted '$dir/issuing.pem' '$dir/device.pem' | grep -q ': OK'"
check_cmd "openssl verify -purpose sslclient" \
  bash -c "openssl verify -purpose sslclient -CAfile '$dir/root.pem' -untrusted '$dir/issuing.pem' '$dir/device.pem' >/dev/null"
check_cmd "the issued certificate is not a server certificate" \
  bash -c "! openssl verify -purpose sslserver -CAfile '$dir/root.pem' -untrusted '$dir/issuing.pem' '$dir/device.pem' >/dev/null 2>&1"

# The certificate on the device token, found by the key's CKA_ID with pkcs11-tool.
id=$(sed -n 's/.*next to key device-mtls (id \([0-9a-f]*\)).*/\1/p' "$dir/happy.out")
check_cmd "device printed the key id" test -n "$id"
pkcs11-tool --module "$MODULE" --token-label device -O --type cert --id "$id" > "$dir/p11.txt" 2>&1 || true
check_cmd "pkcs11-tool -O: a certificate with the key's id on the device token" \
  bash -c "grep -q 'Certificate Object' '$dir/p11.txt' && grep -q 'label:      device-mtls' '$dir/p11.txt'"
pkcs11-tool --module "$MODULE" --token-label device --read-object --type cert --id "$id" \
  -o "$dir/ontoken.der" > /dev/null 2>&1 || true
openssl x509 -in "$dir/device.pem" -outform DER -out "$dir/device.der"
check_cmd "the certificate on the token is the issued one (byte for byte)" cmp -s "$dir/ontoken.der" "$dir/device.der"

# ---- refusals ------------------------------------------------------------------
# refused NAME CODE DESCRIPTION ARGS...: exit code 3, the decoded CBOR error
# printed by the device, the refusal in the server log.
refused() {
  local name=$1 code=$2 what=$3; shift 3
  device "$@"
  if [ "$rc" = 3 ] && has "$dir/out" "the gateway refused: $name (code $code): " &&
     has "$dir/server.log" ": $name: "; then
    ok "refused: $what ($name, code $code, exit 3)"
  else
    bad "refused: $what (exit $rc)"; show_on_fail x
  fi
}

refused unknown-bootstrap 2 "bootstrap certificate from an untrusted CA" \
  --bootstrap-key rogue-bootstrap --key rogue-op
check_cmd "unknown-bootstrap message names the reason" \
  has "$dir/out" "client certificate is not a bootstrap certificate of this factory CA"
check_cmd "the uncertified key of a refused run is removed" has "$dir/out" "removed the uncertified key rogue-op"

nonce=00112233445566778899aabbccddeeff
device --nonce "$nonce"
check_cmd "renewal with the same key and a fresh nonce is accepted" test "$rc" = 0
refused replay 4 "replayed nonce" --nonce "$nonce"
check_cmd "replay message names the nonce" has "$dir/out" "nonce $nonce was already used"

refused proof-of-possession 3 "request signed by another key than the CSR's" --sign-with bootstrap
check_cmd "possession message says why" has "$dir/out" "the request is not signed by the key in its CSR"

refused id-taken 5 "device id enrolled with a different key" --key second-key
check_cmd "id-taken message says why" has "$dir/out" "device id is already enrolled with another key"

refused id-mismatch 6 "device id other than the bootstrap certificate's" --device-id dev-0002 --key k2

# Nothing of the refused runs is left on the token; the enrolled key is.
pkcs11-tool --module "$MODULE" --token-label device -O > "$dir/p11all.txt" 2>&1 || true
check_cmd "no key or certificate of a refused run on the device token" \
  bash -c "grep -q 'label: *device-mtls' '$dir/p11all.txt' && ! grep -qE 'label: +(rogue-op|second-key|k2)\$' '$dir/p11all.txt'"
# The hsmc CLI sees the same: the certificate next to the operational key.
if [ -n "${HSMC_CLI:-}" ] && [ -x "$HSMC_CLI" ]; then
  "$HSMC_CLI" object list --token device --pin-file "$dir/device.pin" > "$dir/cli.txt" 2>&1 || true
  check_cmd "hsmc object list: certificate device-mtls with the key's id" \
    grep -qE "^certificate .*label=\"device-mtls\" id=$id" "$dir/cli.txt"
fi

# The operational identity still works after all that.
device
check_cmd "the enrolled device re-enrolls and is confirmed again" \
  bash -c "[ $rc = 0 ] && grep -q 'gateway confirms: device dev-0001' '$dir/out'"

# ---- stop the server by PID (bounded) ----------------------------------------------
kill "$server_pid"
for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$server_pid" 2>/dev/null; then bad "server stopped"; else ok "server stopped"; fi
server_pid=

# ---- run_demo.sh ----------------------------------------------------------------
if "$src/samples/enroll/run_demo.sh" > "$dir/demo.out" 2>&1 &&
   has "$dir/demo.out" "gateway confirms: device dev-0001 authenticated as" &&
   has "$dir/demo.out" "== result: device enrolled"; then
  ok "run_demo.sh end to end"
else
  bad "run_demo.sh"; cat "$dir/demo.out"
fi

summary
