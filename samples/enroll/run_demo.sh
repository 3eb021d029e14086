#!/usr/bin/env bash
# samples/enroll/run_demo.sh [DIR]
#
# The device enrollment demo, end to end on local SoftHSM2 tokens:
# setup.sh makes the tokens and the PKI in DIR (default: a temporary
# directory, removed afterwards), the gateway's enroll_server runs in the
# background on a free 127.0.0.1 port, enroll_device enrolls and reconnects
# with its new identity, and the server is stopped. Prints what happened.
#
# Environment: HSMC_ENROLL_BIN  directory of the enroll_* programs
#              (default: build/samples/enroll next to the sources)
#              HSMC_MODULE      PKCS#11 module (default SoftHSM2's)
# Exit code: the device's (0 enrolled; see enroll_device --help).
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
bin=${HSMC_ENROLL_BIN:-}
if [ -z "$bin" ]; then
  for b in "$here/../../build/samples/enroll" "$here/../../build-enroll/samples/enroll"; do
    [ -x "$b/enroll_server" ] && { bin=$b; break; }
  done
fi
[ -n "$bin" ] && [ -x "$bin/enroll_server" ] || {
  echo "run_demo.sh: enroll_server not found; build first (cmake --build build) or set HSMC_ENROLL_BIN" >&2
  exit 1
}
export HSMC_ENROLL_BIN=$bin

if [ $# -ge 1 ]; then
  dir=$1; keep=1
else
  dir=$(mktemp -d "${TMPDIR:-/tmp}/hsmc-enroll.XXXXXX"); keep=0
fi
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  [ "$keep" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT

echo "== setup: tokens, root + issuing CA + factory CA, device bootstrap identity"
"$here/setup.sh" "$dir" | sed 's/^/   /'
export SOFTHSM2_CONF=$dir/softhsm2.conf

echo "== gateway: enrollment server"
rm -f "$dir/port"
"$bin/enroll_server" --token gateway --pin-file "$dir/gateway.pin" --root "$dir/root.pem" \
  --factory "$dir/factory.pem" --state "$dir/state" --port 0 --port-file "$dir/port" \
  > "$dir/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do [ -s "$dir/port" ] && break; sleep 0.1; done
if [ ! -s "$dir/port" ]; then
  echo "run_demo.sh: the server did not start:" >&2; cat "$dir/server.log" >&2; exit 2
fi
sed 's/^/   gateway: /' "$dir/server.log"

echo "== device: enroll with the bootstrap identity, then reconnect with the new one"
set +e
"$bin/enroll_device" --token device --pin-file "$dir/device.pin" --root "$dir/root.pem" \
  --port "$(cat "$dir/port")" --cert-out "$dir/device.pem" 2>&1 | sed 's/^/   device: /'
rc=${PIPESTATUS[0]}
set -e

echo "== gateway log"
tail -n +2 "$dir/server.log" | sed 's/^/   gateway: /'
if [ "$rc" = 0 ]; then
  echo "== result: device enrolled; certificate in $([ "$keep" = 1 ] && echo "$dir/device.pem" || echo "the device token")"
else
  echo "== result: enrollment failed (device exit code $rc)"
fi
exit "$rc"
