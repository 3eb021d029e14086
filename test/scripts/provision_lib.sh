# shellcheck shell=bash disable=SC2154 # $dir and $HSMC come from the caller
# Set-up of a provisioning line, shared by test_cli_provision.sh and
# test/bench/provision_bench.sh (sourced, not a test; it checks nothing).
# It sources cli_lib.sh (run, ok/bad, SoftHSM2 set-up). The caller sets
# $dir (its temporary directory) and $HSMC (the hsmc binary), then calls, in
# this order:
#   prov_env           SoftHSM2 config for $dir/tokens, a clean hsmc environment,
#                      PIN files $dir/pin (1234) and $dir/wrongpin, run's stdin
#   prov_station       station token: root CA, line CA, audit key
#   prov_trays N       N device tokens dev-01.. in trays of $TRAY, with manifests
# and then PROV / PROV_T / all_trays to run `hsmc provision`.
# hsmc sees at most HSMC_MAX_SLOTS (16) slots per module, so the devices come
# in trays of 12, as on a line: each tray is a SoftHSM2 directory holding its
# device tokens and a copy of the station token; all trays append to one
# trail, $dir/audit.log.

# shellcheck source=cli_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"

TRAY=12

# prov_env: SoftHSM2 config for $dir/tokens (exported as SOFTHSM2_CONF), no
# HSMC_* settings from the environment but HSMC_MODULE=$MODULE, PIN files
# $dir/pin (1234) and $dir/wrongpin (9999), run's stdin an empty regular
# file $dir/empty.
prov_env() {
  softhsm_dir "$dir"
  clean_env
  : > "$dir/empty"
  run_stdin=$dir/empty
  pin_file "$dir/pin"
  pin_file "$dir/wrongpin" 9999
}

# prov_step WHAT CMD...: run CMD (stdout dropped, stderr in $dir/err); on
# failure say which step failed and return 1. Each step is checked here
# because callers run prov_station under `||`, where set -e does not act.
prov_step() {
  local what=$1; shift
  "$@" >/dev/null 2>"$dir/err" < "$dir/empty" && return 0
  echo "provision_lib: $what failed:" >&2
  sed 's/^/  /' "$dir/err" >&2
  return 1
}

# prov_station: the station token "station": root CA "root" ($dir/root.pem,
# made with `ca init`), line CA "line-ca" issued by it ($dir/int.pem; the
# chain int + root in $dir/chain.pem), audit key "audit" ($dir/audit.spki).
# Returns 1 with the failing step on stderr.
prov_station() {
  local S=("$HSMC" --token station --pin-file "$dir/pin")
  prov_step "station token" new_token station &&
  prov_step "ca init" env HSMC_ALLOW_ROOT_CA=true "${S[@]}" ca init --key root \
    --subject "CN=Line Root,O=hsmc test" --ceremony CER-PROV-1 --out "$dir/root.pem" &&
  prov_step "line CA key" "${S[@]}" key gen --label line-ca --purpose ca_intermediate &&
  prov_step "line CA CSR" "${S[@]}" csr create --key line-ca --subject "CN=Line CA,O=hsmc test" \
    --out "$dir/int.csr" &&
  prov_step "line CA certificate" env HSMC_ALLOW_ROOT_CA=true "${S[@]}" cert issue --ca-key root \
    --ca-cert "$dir/root.pem" --profile ca_intermediate --csr "$dir/int.csr" \
    --ceremony CER-PROV-2 --out "$dir/int.pem" &&
  cat "$dir/int.pem" "$dir/root.pem" > "$dir/chain.pem" &&
  prov_step "audit key" "${S[@]}" key gen --label audit --purpose signing &&
  prov_step "audit public key" "${S[@]}" key export-pub audit --out "$dir/audit.spki"
}

# prov_trays N: trays $dir/tray0.. ($ntray of them), each a copy of
# $dir/tokens (the station) with device tokens dev-01..dev-N (PIN 1234), a
# softhsm2.conf and a manifest devices.csv. Device dev-I sits in tray
# (I - 1) / TRAY.
prov_trays() {
  local n=$1 t i
  ntray=$(( (n + TRAY - 1) / TRAY ))
  for t in $(seq 0 $((ntray - 1))); do
    softhsm_conf "$dir/tray$t"
    cp -r "$dir/tokens/." "$dir/tray$t/tokens/"
    echo "device_id,token_uri" > "$dir/tray$t/devices.csv"
  done
  for i in $(seq -w 1 "$n"); do
    t=$(( (10#$i - 1) / TRAY ))
    use_tray $t
    new_token "dev-$i"
    echo "dev-$i,pkcs11:token=dev-$i?module-path=$MODULE&pin-source=file:$dir/pin" >> "$dir/tray$t/devices.csv"
  done
}

use_tray() { export SOFTHSM2_CONF="$dir/tray$1/softhsm2.conf"; }

PROV() { # tray, extra args... (exec: in a background subshell, $! is hsmc itself)
  local t=$1; shift
  use_tray "$t"
  exec "$HSMC" --token station --pin-file "$dir/pin" provision --manifest "$dir/tray$t/devices.csv" \
    --ca-key line-ca --ca-cert "$dir/chain.pem" --audit-key audit --audit-file "$dir/audit.log" \
    --subject-template "CN={id},O=hsmc test" "$@"
}
PROV_T() { bash -c "$(declare -f PROV use_tray); HSMC='$HSMC' MODULE='$MODULE' dir='$dir'; PROV $1"; }

# all_trays: run provision on every tray, one process each; stderr of all in
# $dir/err.all (appended), sums in $sum_new $sum_skip $sum_fail, worst exit
# code in $rc.
all_trays() {
  sum_new=0; sum_skip=0; sum_fail=0; local worst=0 t
  for t in $(seq 0 $((ntray - 1))); do
    run PROV_T "$t"
    [ $rc -gt $worst ] && worst=$rc
    cat "$dir/err" >> "$dir/err.all"
    sum_new=$((sum_new + $(sed -n 's/^provisioned \([0-9]*\),.*/\1/p' "$dir/out")))
    sum_skip=$((sum_skip + $(sed -n 's/.*skipped \([0-9]*\),.*/\1/p' "$dir/out")))
    sum_fail=$((sum_fail + $(sed -n 's/.*failed \([0-9]*\) of.*/\1/p' "$dir/out")))
  done
  rc=$worst
}
