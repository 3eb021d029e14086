#!/usr/bin/env bash
# samples/enroll/setup.sh DIR [--rogue]
#
# Makes a fresh enrollment demo in DIR:
#   DIR/softhsm2.conf, DIR/tokens/   two SoftHSM2 tokens: "gateway" and "device"
#   DIR/gateway.pin, DIR/device.pin   their user PINs (files, mode 600)
#   DIR/root.pem, issuing.pem, factory.pem, gateway.pem   the sample PKI
#   DIR/state/                        the server's registry and nonces
# and, through enroll_setup, the CA keys on the gateway token and the
# bootstrap identity (device id dev-0001) on the device token.
# --rogue also puts a counterfeit bootstrap identity "rogue-bootstrap" on
# the device token (for the refusal demo and the tests).
#
# Environment: HSMC_ENROLL_BIN  directory of enroll_setup (default: found
#              next to this script's build, see below)
#              HSMC_MODULE      PKCS#11 module (default SoftHSM2's)
#              DEVICE_ID        default dev-0001
# Afterwards:  export SOFTHSM2_CONF=DIR/softhsm2.conf
set -euo pipefail

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
[ $# -ge 1 ] || { usage >&2; exit 1; }
case "$1" in -h|--help) usage; exit 0 ;; esac
dir=$1
rogue=()
[ "${2:-}" = "--rogue" ] && rogue=(--rogue rogue-bootstrap)

here=$(cd "$(dirname "$0")" && pwd)
bin=${HSMC_ENROLL_BIN:-}
if [ -z "$bin" ]; then
  for b in "$here/../../build/samples/enroll" "$here/../../build-enroll/samples/enroll"; do
    [ -x "$b/enroll_setup" ] && { bin=$b; break; }
  done
fi
[ -n "$bin" ] && [ -x "$bin/enroll_setup" ] || {
  echo "setup.sh: enroll_setup not found; build first (cmake --build build) or set HSMC_ENROLL_BIN" >&2
  exit 1
}
module=${HSMC_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
device_id=${DEVICE_ID:-dev-0001}
command -v softhsm2-util >/dev/null || { echo "setup.sh: softhsm2-util not found (apt-get install softhsm2)" >&2; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Replace only what a previous demo made here.
rm -rf "$dir/tokens" "$dir/state"
rm -f "$dir"/{root,issuing,factory,gateway,device}.pem "$dir"/{gateway,device}.pin "$dir/softhsm2.conf"
mkdir -p "$dir/tokens" "$dir/state"
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF=$dir/softhsm2.conf

# Demo PINs: random, in files only readable by us (never on a command line
# of the programs; softhsm2-util needs them once to initialise the token).
umask 077
for t in gateway device; do
  pin=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
  so=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s\n' "$pin" > "$dir/$t.pin"
  softhsm2-util --init-token --free --label "$t" --pin "$pin" --so-pin "$so" >/dev/null
done
umask 022

"$bin/enroll_setup" --module "$module" --dir "$dir" \
  --gateway-token gateway --gateway-pin-file "$dir/gateway.pin" \
  --device-token device --device-pin-file "$dir/device.pin" \
  --device-id "$device_id" "${rogue[@]}"
