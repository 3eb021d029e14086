#!/usr/bin/env bash
# provision_bench.sh [N]: provisioning throughput, in one run on the same
# machine state (N devices, default 48):
#   a. `hsmc provision` of N fresh SoftHSM2 device tokens, in trays of 12 (one
#      provision process per tray; the set-up of test_cli_provision.sh, from
#      test/scripts/provision_lib.sh): devices/s over the wall clock of the
#      provision commands alone (making the tokens is not counted);
#   b. `hsmc cert issue --csr DIR --out-dir DIR2` over N P-256 CSRs made
#      beforehand with `hsmc csr create` (one key each, all on one token
#      "csrs"), issued by the same line CA as a.: certificates/s over the
#      wall clock of that one command (median of 3 runs);
#   c. the library: `hsmc_bench --op cert-issue-p256` (hsmc_ca_issue of a
#      P-256 CSR, through run_bench.sh) for about as long as a. took;
#   d. the ratios a/b and b/c, and where a device's time goes: key
#      generation alone, timed as `hsmc key gen` (mtls_client, a second key)
#      on each of the N provisioned device tokens less an `hsmc key list` run
#      just before it on the same token (process start, module load, login),
#      the median over the devices; issuing, as 1/b; the rest (device token
#      open and login, CSR signed on the device, store and read back the
#      certificate, the signed audit record) is what remains of a.'s time
#      per device.
# Prints name=value lines, then a Markdown table. Checks nothing, but exits
# non-zero when a step fails.
# Environment:
#   HSMC_CLI          the hsmc binary (default: build-bench, then build)
#   HSMC_BENCH        the hsmc_bench binary (found by run_bench.sh otherwise)
#   HSMC_TEST_MODULE  SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)
set -euo pipefail
export LC_ALL=C # a decimal point in $EPOCHREALTIME and awk
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
N=${1:-48}
case $N in '' | *[!0-9]*) echo "usage: provision_bench.sh [N]  (N devices, default 48)" >&2; exit 2 ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 999 ] || { echo "provision_bench.sh: N must be 1..999" >&2; exit 2; }
HSMC=${HSMC_CLI:-}
for b in "$src/build-bench/cli/hsmc" "$src/build/cli/hsmc"; do
  [ -n "$HSMC" ] && break
  [ -x "$b" ] && HSMC=$b
done
if [ -z "$HSMC" ] || [ ! -x "$HSMC" ]; then
  echo "provision_bench.sh: hsmc not found; build it (cmake -DCMAKE_BUILD_TYPE=Release) or set HSMC_CLI" >&2
  exit 2
fi
# shellcheck disable=SC2034 # MODULE: read by provision_lib.sh
MODULE=${HSMC_TEST_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
command -v softhsm2-util >/dev/null || { echo "provision_bench.sh: softhsm2-util missing (apt-get install softhsm2)" >&2; exit 2; }
# run_bench.sh finds hsmc_bench (or says how to build it): ask it now, not after a. and b.
bash "$src/test/bench/run_bench.sh" --list >/dev/null

dir=$(mktemp -d "${TMPDIR:-/tmp}/hsmc-prov-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
die() { echo "provision_bench.sh: $1" >&2; for f in "$dir/err" "$dir/err.all"; do [ -s "$f" ] && sed 's/^/  /' "$f" | head -20 >&2; done; exit 1; }
# calc EXPR: floating point arithmetic (awk), printed with %.6g
calc() { awk "BEGIN { printf \"%.6g\\n\", $1 }"; }
# r2 EXPR [DIGITS]: EXPR rounded to DIGITS decimals (default 1)
r2() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }

# shellcheck source=SCRIPTDIR/../scripts/provision_lib.sh
. "$src/test/scripts/provision_lib.sh"
prov_env
prov_station || die "station set-up failed"
prov_trays "$N"

# The CSRs of b., on a token of their own next to the station (made after
# the trays copied $dir/tokens, so the trays do not carry it).
softhsm2-util --init-token --free --label csrs --pin 1234 --so-pin 12345678 >/dev/null
mkdir -p "$dir/csr"
for i in $(seq -w 1 "$N"); do
  run "$HSMC" --token csrs --pin-file "$dir/pin" key gen --label "csr-$i" --purpose mtls_client
  [ "$rc" -eq 0 ] || die "key gen csr-$i (exit $rc)"
  run "$HSMC" --token csrs --pin-file "$dir/pin" csr create --key "csr-$i" \
    --subject "CN=dev-$i,O=hsmc test" --out "$dir/csr/dev-$i.csr"
  [ "$rc" -eq 0 ] || die "csr create csr-$i (exit $rc)"
done

# ---- a. provision ------------------------------------------------------------------
: > "$dir/err.all"
t0=$EPOCHREALTIME
all_trays
t1=$EPOCHREALTIME
[ "$rc" -eq 0 ] && [ "$sum_new" -eq "$N" ] ||
  die "provision: $sum_new of $N provisioned, $sum_fail failed (exit $rc)"
prov_s=$(calc "$t1 - $t0")
prov_rate=$(calc "$N / $prov_s")

# ---- b. cert issue over the pre-made CSRs --------------------------------------------
# Three runs into fresh directories, the median taken: one run of 48 is a
# fraction of a second, where one stall of the machine shows.
export SOFTHSM2_CONF="$dir/softhsm2.conf"
for k in 1 2 3; do
  mkdir -p "$dir/issued$k"
  t0=$EPOCHREALTIME
  run "$HSMC" --token station --pin-file "$dir/pin" cert issue --ca-key line-ca \
    --ca-cert "$dir/chain.pem" --profile mtls_client --csr "$dir/csr" --out-dir "$dir/issued$k"
  t1=$EPOCHREALTIME
  issued=$(find "$dir/issued$k" -name '*.pem' | wc -l)
  [ "$rc" -eq 0 ] && [ "$issued" -eq "$N" ] || die "cert issue: $issued of $N issued (exit $rc)"
  calc "$t1 - $t0" >> "$dir/cli_s"
  # The command's own figure (its loop, without process start and CA open).
  sed -n 's/.*(\([0-9.]*\) certificates\/s).*/\1/p' "$dir/err" >> "$dir/cli_self"
done
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
cli_s=$(median "$dir/cli_s")
cli_rate=$(calc "$N / $cli_s")
cli_self=$(median "$dir/cli_self")

# ---- c. the library ----------------------------------------------------------------
# As long as a. took (the same duration class), at least 1 s so that the
# bench has enough ~10 ms rounds to rank.
lib_s=$(r2 "$prov_s < 1 ? 1 : $prov_s")
set +e
bash "$src/test/bench/run_bench.sh" --op cert-issue-p256 --seconds "$lib_s" --quiet > "$dir/lib" 2>&1
rc=$?
set -e
lib_rate=$(sed -n 's/^op=cert-issue-p256 .* ops_per_s=\([0-9.]*\) .*/\1/p' "$dir/lib")
lib_sign=$(sed -n 's/.* raw_ops_per_s=\([0-9.]*\) .*/\1/p' "$dir/lib")
[ "$rc" -eq 0 ] && [ -n "$lib_rate" ] && [ -n "$lib_sign" ] || { cp "$dir/lib" "$dir/err"; die "hsmc_bench cert-issue-p256 (exit $rc)"; }

# ---- d. where a device's time goes ----------------------------------------------------
# On each device token, in its tray: `hsmc key list` then `hsmc key gen` (of
# the kind provision makes, next to the device key); the median over the
# devices of the difference is the key generation's own time.
: > "$dir/kg_diff"
kg_s=0 list_s=0
for i in $(seq -w 1 "$N"); do
  use_tray $(( (10#$i - 1) / TRAY ))
  t0=$EPOCHREALTIME
  run "$HSMC" --token "dev-$i" --pin-file "$dir/pin" key list
  t1=$EPOCHREALTIME
  [ "$rc" -eq 0 ] || die "key list on dev-$i (exit $rc)"
  run "$HSMC" --token "dev-$i" --pin-file "$dir/pin" key gen --label bench-key --purpose mtls_client
  t2=$EPOCHREALTIME
  [ "$rc" -eq 0 ] || die "key gen on dev-$i (exit $rc)"
  list_s=$(calc "$list_s + $t1 - $t0")
  kg_s=$(calc "$kg_s + $t2 - $t1")
  calc "1000 * ($t2 - $t1 - ($t1 - $t0))" >> "$dir/kg_diff"
done
dev_ms=$(calc "1000 * $prov_s / $N")
kg_ms=$(median "$dir/kg_diff")
issue_ms=$(calc "1000 / $cli_rate")
rest_ms=$(calc "$dev_ms - $kg_ms - $issue_ms")
pct() { calc "100 * $1 / $dev_ms"; }

# ---- results ---------------------------------------------------------------------------
echo "# $(nproc) CPUs, $(uname -m); $(softhsm2-util --version 2>/dev/null | sed 's/^/SoftHSM2 /'); N=$N devices in $ntray trays"
echo "provision_devices=$N provision_s=$(r2 "$prov_s" 3) provision_devices_per_s=$(r2 "$prov_rate")"
echo "cli_issue_certs=$N cli_issue_s=$(r2 "$cli_s" 3) cli_issue_certs_per_s=$(r2 "$cli_rate") cli_issue_self_reported_per_s=${cli_self:-?}"
echo "lib_issue_seconds=$lib_s lib_issue_certs_per_s=$(r2 "$lib_rate") lib_raw_sign_per_s=$(r2 "$lib_sign")"
echo "ratio_provision_to_cli_issue=$(r2 "$prov_rate / $cli_rate" 3) ratio_cli_issue_to_lib_issue=$(r2 "$cli_rate / $lib_rate" 3)"
echo "keygen_runs_s=$(r2 "$kg_s" 3) key_list_runs_s=$(r2 "$list_s" 3)"
echo "device_ms=$(r2 "$dev_ms" 2) keygen_ms=$(r2 "$kg_ms" 2) issue_ms=$(r2 "$issue_ms" 2) rest_ms=$(r2 "$rest_ms" 2)"
cat <<TABLE

| Provisioning (SoftHSM2, $(nproc) CPUs, N=$N) | Rate | Per item |
|---|---|---|
| \`hsmc provision\`, $ntray trays of up to $TRAY devices | $(r2 "$prov_rate") devices/s | $(r2 "$dev_ms" 1) ms |
| \`hsmc cert issue --csr DIR\`, pre-made P-256 CSRs | $(r2 "$cli_rate") certificates/s | $(r2 "$issue_ms" 2) ms |
| library \`hsmc_ca_issue\` (hsmc_bench cert-issue-p256) | $(r2 "$lib_rate") certificates/s | $(r2 "1000 / $lib_rate" 2) ms |
| provision ÷ CLI issue; CLI issue ÷ library | $(r2 "$prov_rate / $cli_rate" 3); $(r2 "$cli_rate / $lib_rate" 3) | |
| per device: key generation | | $(r2 "$kg_ms" 1) ms ($(r2 "$(pct "$kg_ms")" 0) %) |
| per device: certificate issue | | $(r2 "$issue_ms" 1) ms ($(r2 "$(pct "$issue_ms")" 0) %) |
| per device: the rest (token open, CSR, store, read back, audit record) | | $(r2 "$rest_ms" 1) ms ($(r2 "$(pct "$rest_ms")" 0) %) |
TABLE
