# shellcheck shell=bash disable=SC2154 # $dir comes from the caller
# Helpers shared by the test scripts and test/with-token.sh (sourced, not a
# test itself; it checks nothing on its own). Sourcing sets MODULE (the
# SoftHSM2 module), PY and the counters pass/fail; the functions use the
# calling script's $dir (its temporary directory). samples/*/run_demo.sh and
# scripts/demo.sh stay standalone on purpose: they are for users.

MODULE=${HSMC_TEST_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
PY=/usr/bin/python3
# The name in "NAME: ... missing" messages: the running script, without .sh.
me=$(basename "$0" .sh)

# ---- set-up ---------------------------------------------------------------------------

# find_hsmc: HSMC is $HSMC_CLI, else the build directory's cli/hsmc
# ($HSMC_TEST_BINARY_DIR, else build/ of the source tree). Exits 1 when it
# is not an executable.
find_hsmc() {
  local src
  src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  HSMC=${HSMC_CLI:-${HSMC_TEST_BINARY_DIR:-$src/build}/cli/hsmc}
  if [ ! -x "$HSMC" ]; then
    echo "$me: hsmc binary not found at '$HSMC' (set HSMC_CLI)" >&2
    exit 1
  fi
}
# need_tools TOOL...: exits 1 naming the first tool that is not installed.
need_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$me: $tool is missing" >&2; exit 1; }
  done
}
# new_dir NAME: a fresh temporary directory $dir (hsmc-NAME.XXXXXX), removed
# when the script exits. Scripts with more to clean up set their own trap.
new_dir() {
  dir=$(mktemp -d "${TMPDIR:-/tmp}/hsmc-$1.XXXXXX")
  trap 'rm -rf "$dir"' EXIT
}
# softhsm_conf DIR: an empty SoftHSM2 token directory DIR/tokens and its
# configuration DIR/softhsm2.conf (file object store, errors only, fixed
# slots); SOFTHSM2_CONF is left as it is (for a second, separate set of
# tokens that a command reaches through `env SOFTHSM2_CONF=...`).
softhsm_conf() {
  mkdir -p "$1/tokens"
  printf '%s\n' "directories.tokendir = $1/tokens" "objectstore.backend = file" \
    "log.level = ERROR" "slots.removable = false" > "$1/softhsm2.conf"
}
# softhsm_dir DIR: softhsm_conf DIR, exported as SOFTHSM2_CONF.
softhsm_dir() {
  softhsm_conf "$1"
  export SOFTHSM2_CONF="$1/softhsm2.conf"
}
# new_token LABEL [PIN]: a SoftHSM2 token in the free slot of $SOFTHSM2_CONF's
# directory, user PIN PIN (default 1234), SO PIN 12345678.
new_token() {
  softhsm2-util --init-token --free --label "$1" --pin "${2:-1234}" --so-pin 12345678 >/dev/null
}
# pin_file FILE [PIN]: FILE holds PIN (default 1234) and a newline, mode 600.
pin_file() {
  printf '%s\n' "${2:-1234}" > "$1"
  chmod 600 "$1"
}
# clean_env: no hsmc setting from the caller's environment may choose for a
# test; HSMC_MODULE is $MODULE.
clean_env() {
  unset HSMC_TOKEN HSMC_PIN HSMC_PIN_FILE HSMC_ROLE HSMC_ALLOW_ROOT_CA \
    HSMC_LOG_FILE HSMC_LOG_LEVEL HSMC_LOG_MAX_BYTES HSMC_LOG_BACKUP_COUNT
  export HSMC_MODULE="$MODULE"
}
# test_tokens LABEL...: the usual start of a test on tokens: softhsm_dir
# $dir, clean_env, a token of each LABEL (PIN 1234) and $dir/pin.
test_tokens() {
  local label
  softhsm_dir "$dir"
  clean_env
  for label in "$@"; do new_token "$label"; done
  pin_file "$dir/pin"
}

# ---- results --------------------------------------------------------------------------

pass=0
fail=0
# ok NAME / bad NAME: count one check and print its result. After a
# failure, bad calls the script's on_bad, when it defines one, to show why.
ok() { pass=$((pass + 1)); echo "ok   - $1"; }
bad() {
  fail=$((fail + 1))
  echo "FAIL - $1"
  if declare -F on_bad >/dev/null; then on_bad; fi
  return 0
}
# show_run out|err...: the last run's stdout (first 40 lines) and/or stderr
# (first 20), indented; an on_bad for scripts whose output is text.
show_run() {
  local s n
  for s in "$@"; do
    n=20; [ "$s" = out ] && n=40
    if [ -s "$dir/$s" ]; then sed "s/^/       $s: /" "$dir/$s" | head -"$n"; fi
  done
  return 0
}
# summary: the "N passed, N failed" line; false when a check failed (the
# last command of every script, so that it is the exit code).
summary() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
# check NAME WANT_RC [stdout-pattern] [stderr-pattern]: the last run exited
# with WANT_RC and its output matches the extended regular expressions.
check() {
  local name=$1 want=$2 outpat=${3:-} errpat=${4:-}
  if [ "$rc" != "$want" ]; then bad "$name: exit $rc, want $want"; return; fi
  if [ -n "$outpat" ] && ! grep -qaE -- "$outpat" "$dir/out"; then bad "$name: stdout lacks /$outpat/"; return; fi
  if [ -n "$errpat" ] && ! grep -qaE -- "$errpat" "$dir/err"; then bad "$name: stderr lacks /$errpat/"; return; fi
  ok "$name"
}
# pycheck_file NAME FILE SCRIPT: a Python check (SCRIPT, given FILE as
# sys.argv[1]) passes when it exits 0; its message goes with a failure.
pycheck_file() {
  local msg
  if msg=$("$PY" -c "$3" "$2" 2>&1); then ok "$1"; else bad "$1: $msg"; fi
}
# pycheck NAME SCRIPT: pycheck_file over the last run's stdout.
pycheck() { pycheck_file "$1" "$dir/out" "$2"; }
# check_cmd NAME CMD...: passes when CMD succeeds.
check_cmd() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
# has FILE TEXT: FILE contains TEXT (fixed string).
has() { grep -qF -- "$2" "$1"; }

# ---- running hsmc ---------------------------------------------------------------------

# run CMD...: stdout in $dir/out, stderr in $dir/err, exit code in $rc; stdin
# is $run_stdin (default /dev/null; some scripts want an empty regular
# file), never a terminal.
run() {
  set +e
  "$@" > "$dir/out" 2> "$dir/err" < "${run_stdin:-/dev/null}"
  rc=$?
  set -e
}
# on_tty ANSWER CMD...: run CMD on a pseudo-terminal (stdin, stdout and stderr),
# type ANSWER (unless empty) once it asks "[y/N]", give up after $tty_wait
# seconds (default 20). Output without CRs in $dir/tty, exit code in $rc.
on_tty() {
  set +e
  "$PY" - "${tty_wait:-20}" "$@" > "$dir/tty" <<'PYEOF'
import os, pty, select, sys, time
wait, answer = float(sys.argv[1]), sys.argv[2].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[3], sys.argv[3:])
out, sent, deadline = b"", False, time.time() + wait
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if not r:
        continue
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
    if not sent and answer and b"[y/N]" in out:
        os.write(fd, answer + b"\n")
        sent = True
else:
    os.kill(pid, 9)
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace").replace("\r", ""))
sys.exit(os.WEXITSTATUS(st) if os.WIFEXITED(st) else 99)
PYEOF
  rc=$?
  set -e
}
# same NAME FILE1 FILE2
same() { if cmp -s "$2" "$3"; then ok "$1"; else bad "$1: $2 and $3 differ"; fi; }
# absent NAME FILE: no FILE and no temporary file next to it.
absent() {
  if [ -e "$2" ] || compgen -G "$2.hsmc-*" >/dev/null; then bad "$1: $2 (or a temporary) exists"; else ok "$1"; fi
}
