#!/usr/bin/env bash
# samples/at_rest/run_demo.sh [DIR]
#
# The at-rest encryption demo on a local SoftHSM2 token made in DIR
# (default: a temporary directory, removed afterwards): a gateway's files
# are sealed under a KEK the token makes, the KEK is rotated (each file's
# content key re-wrapped, the content left as it was), the files are opened
# and compared, a record is stored and read back, and the old KEK version
# is retired. Prints what happened.
#
# Environment: HSMC_AT_REST_BIN  directory of the at_rest program
#              (default: build/samples/at_rest next to the sources)
#              HSMC_MODULE       PKCS#11 module (default SoftHSM2's)
# Exit code: 0 when every step worked, else the failing step's.
set -euo pipefail

case "${1:-}" in -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
bin=${HSMC_AT_REST_BIN:-}
if [ -z "$bin" ]; then
  for b in "$here/../../build/samples/at_rest" "$here/../../build-atrest/samples/at_rest"; do
    [ -x "$b/at_rest" ] && { bin=$b; break; }
  done
fi
[ -n "$bin" ] && [ -x "$bin/at_rest" ] || {
  echo "run_demo.sh: at_rest not found; build first (cmake --build build) or set HSMC_AT_REST_BIN" >&2
  exit 1
}
at_rest=$bin/at_rest
command -v softhsm2-util >/dev/null || { echo "run_demo.sh: softhsm2-util not found (apt-get install softhsm2)" >&2; exit 1; }

if [ $# -ge 1 ]; then
  dir=$1; keep=1
else
  dir=$(mktemp -d "${TMPDIR:-/tmp}/hsmc-at-rest.XXXXXX"); keep=0
fi
cleanup() { [ "$keep" = 1 ] || rm -rf "$dir"; }
trap cleanup EXIT
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
# Replace only what a previous demo made here.
rm -rf "$dir/tokens" "$dir/data" "$dir/originals" "$dir/opened"
rm -f "$dir/softhsm2.conf" "$dir/gateway.pin"
mkdir -p "$dir/tokens"
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF=$dir/softhsm2.conf
# A random demo PIN in a file only we can read (never an argument of at_rest).
umask 077
pin=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$pin" > "$dir/gateway.pin"
softhsm2-util --init-token --free --label gateway --pin "$pin" \
  --so-pin "$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" >/dev/null
umask 022
export HSMC_TOKEN=gateway HSMC_PIN_FILE=$dir/gateway.pin

echo "== a gateway's data: configuration, a log, a firmware image, a database file"
mkdir -p "$dir/data"
printf '{"site": "plant-7", "uplink": "mqtts://broker.example:8883"}\n' > "$dir/data/config.json"
for i in $(seq 200); do printf 'sensor %d: ok\n' "$i"; done > "$dir/data/device.log"
head -c 3000000 /dev/urandom > "$dir/data/firmware.bin"
head -c 180000 /dev/urandom > "$dir/data/keys.db"
cp -a "$dir/data" "$dir/originals"
ls -l "$dir/data" | tail -n +2 | awk '{printf "   %-12s %9d bytes\n", $9, $5}'

echo "== seal: every file becomes NAME.cose under the token's KEK"
"$at_rest" seal "$dir/data" 2>&1 | sed 's/^/   /'

echo "== status"
"$at_rest" status "$dir/data" --list | sed 's/^/   /'

# Header length per envelope: the chunks follow it, rotate leaves them alone.
tails() {
  "$at_rest" status "$dir/data" --list |
    sed -n 's/^  \([^ ]*\.cose\) .*, header \([0-9]*\) bytes$/\1 \2/p' |
    while read -r name len; do
      printf '%s %s\n' "$name" "$(tail -c +$((len + 1)) "$dir/data/$name" | sha256sum | cut -c1-16)"
    done | sort
}
before=$(tails)
echo "== rotate: a new KEK version; each content key re-wrapped, content untouched"
"$at_rest" rotate "$dir/data" 2>&1 | sed 's/^/   /'
after=$(tails)
n=$(printf '%s\n' "$before" | wc -l)
if [ "$before" = "$after" ]; then
  echo "   chunk bytes after each header: unchanged in all $n envelopes (sha256 of the chunks)"
  printf '%s\n' "$after" | sed 's/^/      /'
else
  echo "   chunk bytes changed: this should not happen" >&2
  exit 1
fi

echo "== open: every envelope back to plaintext, compared with the originals"
"$at_rest" open "$dir/data" --out "$dir/opened" | sed 's/^/   /'
same=0
for f in "$dir/originals"/*; do cmp -s "$f" "$dir/opened/$(basename "$f")" && same=$((same + 1)); done
total=$(ls "$dir/originals" | wc -l)
if [ "$same" = "$total" ]; then
  echo "   opened $same files: identical"
else
  echo "   opened files differ from the originals ($same of $total identical)" >&2
  exit 1
fi

echo "== a record: one small value, bound to its id"
"$at_rest" record put "$dir/data" db.password --value "correct horse battery staple" | sed 's/^/   /'
printf '   record get db.password: %s\n' "$("$at_rest" record get "$dir/data" db.password)"
cp "$dir/data/records/db.password.rec" "$dir/data/records/db.user.rec"
echo "   the same record file copied to id db.user:"
"$at_rest" record get "$dir/data" db.user 2>&1 | sed 's/^/   /' || true
rm -f "$dir/data/records/db.user.rec"

echo "== retire: the old KEK version goes once nothing refers to it"
"$at_rest" retire "$dir/data" --version 1 | sed 's/^/   /'
"$at_rest" status "$dir/data" | sed 's/^/   /'

if [ "$keep" = 1 ]; then
  echo "== result: sealed data, token and opened copies in $dir"
else
  echo "== result: done (temporary directory removed)"
fi
