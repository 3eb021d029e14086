#!/usr/bin/env bash
# test_cli_log.sh: the hsmc command's log: stderr with -v, --log-file /
# HSMC_LOG_FILE with size-based rotation (HSMC_LOG_MAX_BYTES,
# HSMC_LOG_BACKUP_COUNT), HSMC_LOG_LEVEL, timestamped lines, and never the PIN.
#   HSMC_CLI             the hsmc binary (set by ctest)
#   HSMC_TEST_MODULE     SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)
set -euo pipefail

# run, ok/bad, SoftHSM2 set-up: shared by the test scripts.
. "$(dirname "$0")/cli_lib.sh"
find_hsmc
new_dir cli-log
softhsm_dir "$dir"
clean_env
PIN=73915286
new_token logtok $PIN
pin_file "$dir/pin" $PIN
export HSMC_TOKEN=logtok HSMC_PIN_FILE="$dir/pin"
: > "$dir/empty"
run_stdin=$dir/empty
on_bad() { show_run err; }
stamp='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z hsmc\[[0-9]+\] (error|warn|info|debug): '

# 1. default: nothing logged; -v logs to stderr with timestamps
run "$HSMC" key list
if [ $rc -eq 0 ] && ! grep -Eq "$stamp" "$dir/err"; then ok "no log by default"
else bad "default (rc=$rc)"; fi
run "$HSMC" -v key list
estamp='^hsmc: \[(info|debug)\] [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z '
if [ $rc -eq 0 ] && grep -Eq "${estamp}hsmc key list: start" "$dir/err" &&
   grep -Eq "${estamp}.*exit 0" "$dir/err"; then ok "-v: timestamped lines on stderr"
else bad "-v (rc=$rc)"; fi

# 2. --log-file: the lines go to the file, not stderr
run "$HSMC" --log-file "$dir/one.log" key gen --purpose signing --label logkey
if [ $rc -eq 0 ] && ! grep -q "start" "$dir/err" && grep -Eq "${stamp}hsmc key gen: start" "$dir/one.log" &&
   [ "$(stat -c %a "$dir/one.log")" = 600 ]; then ok "--log-file: lines in the file (mode 600), none on stderr"
else bad "--log-file (rc=$rc)"; fi
if [ -s "$dir/one.log" ] && ! grep -Ev "$stamp" "$dir/one.log" | grep -q .; then ok "every line is timestamped"
else bad "a line without timestamp: $(grep -Ev "$stamp" "$dir/one.log" | head -1)"; fi

# 3. rotation: small files, two backups kept
export HSMC_LOG_FILE="$dir/rot.log" HSMC_LOG_LEVEL=debug HSMC_LOG_MAX_BYTES=400 HSMC_LOG_BACKUP_COUNT=2
for i in 1 2 3 4 5 6 7 8; do
  run "$HSMC" key list
  [ $rc -eq 0 ] || bad "key list $i with the log (rc=$rc)"
  run "$HSMC" key show nosuchkey
done
if [ -s "$dir/rot.log" ] && [ -s "$dir/rot.log.1" ] && [ -s "$dir/rot.log.2" ] && [ ! -e "$dir/rot.log.3" ]; then
  ok "rotated into rot.log.1 and rot.log.2, no third backup"
else bad "rotation: $(ls "$dir" | tr '\n' ' ')"; fi
big=0
for f in "$dir"/rot.log*; do
  [ "$(stat -c %s "$f")" -le 400 ] || big=1
done
if [ $big -eq 0 ]; then ok "no log file over HSMC_LOG_MAX_BYTES"; else bad "a file over 400 bytes: $(ls -l "$dir"/rot.log*)"; fi
if grep -q "exit 6" "$dir"/rot.log*; then ok "a failing command's exit code is logged"
else bad "no 'exit 6' line"; fi
export HSMC_LOG_BACKUP_COUNT=0
run "$HSMC" key list; run "$HSMC" key list; run "$HSMC" key list
if [ "$(stat -c %s "$dir/rot.log")" -le 400 ] && [ ! -e "$dir/rot.log.3" ]; then ok "BACKUP_COUNT=0: the file starts again"
else bad "backup count 0"; fi
unset HSMC_LOG_FILE HSMC_LOG_MAX_BYTES HSMC_LOG_BACKUP_COUNT

# 4. levels and bad settings
HSMC_LOG_LEVEL=error run "$HSMC" --log-file "$dir/err.log" key list
if [ $rc -eq 0 ] && ! grep -q "start" "$dir/err.log"; then ok "HSMC_LOG_LEVEL=error: no info lines"
else bad "level error (rc=$rc)"; fi
HSMC_LOG_LEVEL=loud run "$HSMC" key list
if [ $rc -eq 2 ] && grep -q "HSMC_LOG_LEVEL" "$dir/err"; then ok "bad HSMC_LOG_LEVEL: usage error"
else bad "bad level (rc=$rc)"; fi
HSMC_LOG_MAX_BYTES=12k run "$HSMC" key list
if [ $rc -eq 2 ] && grep -q "HSMC_LOG_MAX_BYTES" "$dir/err"; then ok "bad HSMC_LOG_MAX_BYTES: usage error"
else bad "bad max bytes (rc=$rc)"; fi
run "$HSMC" --log-file "$dir/nodir/x.log" key list
if [ $rc -eq 1 ] && grep -q "cannot open log file" "$dir/err"; then ok "unwritable log file: exit 1"
else bad "unwritable (rc=$rc)"; fi

# 5. never the PIN, also after a wrong PIN
printf '11112222\n' > "$dir/wrongpin"
HSMC_LOG_LEVEL=debug run "$HSMC" --log-file "$dir/pin.log" --pin-file "$dir/wrongpin" key list
if [ $rc -eq 5 ]; then ok "wrong PIN: exit 5"; else bad "wrong PIN (rc=$rc)"; fi
if ! grep -rq -e $PIN -e 11112222 "$dir"/*.log* "$dir/err"; then ok "no PIN in any log or on stderr"
else bad "a PIN was logged"; fi

summary
