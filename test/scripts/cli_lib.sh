# Helpers shared by the CLI test scripts (sourced, not a test itself).
# They use the calling script's $dir (its temporary directory) and $PY.
# The calling script defines ok/bad/check, whose wording differs per script.

# run CMD...: stdout in $dir/out, stderr in $dir/err, exit code in $rc; stdin
# is never a terminal.
run() {
  set +e
  "$@" > "$dir/out" 2> "$dir/err" < /dev/null
  rc=$?
  set -e
}
# on_tty ANSWER CMD...: run CMD on a pseudo-terminal (stdin, stdout and stderr),
# type ANSWER once it asks "[y/N]", give up after 20 s. Output in $dir/tty,
# exit code in $rc.
on_tty() {
  set +e
  "$PY" - "$@" > "$dir/tty" <<'PYEOF'
import os, pty, select, sys, time
answer = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out, sent, deadline = b"", False, time.time() + 20
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
