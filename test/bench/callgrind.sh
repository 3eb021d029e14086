#!/usr/bin/env bash
# callgrind.sh [OP...]
# Instructions hsmc adds per operation over the plain PKCS#11 calls, counted
# by valgrind's callgrind (exact and repeatable, unlike timings on a noisy
# machine). One valgrind run of hsmc_bench on a fresh SoftHSM2 token:
# a profile is dumped just before each of bench_loop_hsmc and bench_loop_raw
# (when bench_mark returns) and when each returns, so the profiles dumped on
# leaving a loop hold exactly that loop: one per side and operation, with
# the same n. Warm-up, key generation and set-up fall into the other
# profiles and are not counted. (Valgrind 3.19 writes empty profiles when
# dumping is combined with --toggle-collect, and ignores --dump-before next
# to --dump-after, hence the marker function.)
#
# Prints per operation:
#   op=<name> n=<N> hsmc_instr_per_op=<a> raw_instr_per_op=<b> added_instr_per_op=<a-b> token_instr_per_op=<t>
# a and b are the instructions each side executes outside the token module
# (the application, hsmc, mbedTLS hashing, libc) plus, for a, the token's
# work in any token call hsmc makes beyond those of the raw side. The
# token's work for the calls both sides make (t per operation: ECDSA, RSA,
# AES inside SoftHSM2) is the same on both sides and left out, because its
# run-to-run variation (random nonces, blinding) is larger than what hsmc
# adds. Then the functions that cost hsmc the most per operation are listed.
#
# Default ops: the sign ops and the 4 KiB encrypt ops (plus the COSE ones
# when built). Environment: CG_N (operations per side, default 100),
# HSMC_BENCH (binary), HSMC_TEST_MODULE, CG_KEEP=1 (keep the profiles).
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bench=${HSMC_BENCH:-}
if [ -z "$bench" ]; then
  for b in "$src/build-bench/test/bench/hsmc_bench" "$src/build/test/bench/hsmc_bench"; do
    if [ -x "$b" ]; then bench=$b; break; fi
  done
fi
if [ -z "$bench" ] || [ ! -x "$bench" ]; then
  echo "callgrind.sh: hsmc_bench not found; build it or set HSMC_BENCH" >&2
  exit 2
fi
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind missing (apt-get install valgrind)" >&2; exit 2; }
module=${HSMC_TEST_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
n=${CG_N:-100}

if [ $# -gt 0 ]; then
  ops=("$@")
else
  ops=(ecdsa-p256-sign ecdsa-p384-sign rsa2048-sign rsa2048-pss-sign aes256-gcm-encrypt-4k)
  for o in cose-sign1-es256 cose-encrypt0-4k; do
    if "$bench" --list | grep -qx "$o"; then ops+=("$o"); fi
  done
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/hsmc-cg.XXXXXX")
if [ "${CG_KEEP:-0}" = 1 ]; then
  echo "# profiles kept in $dir" >&2
else
  trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir/tokens"
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
export SOFTHSM2_CONF="$dir/softhsm2.conf"
printf '1234\n' > "$dir/pin"
chmod 600 "$dir/pin"
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null

args=()
for o in "${ops[@]}"; do args+=(--op "$o"); done
# --rounds 1: one hsmc loop of n, then one raw loop of n, per operation.
valgrind --tool=callgrind \
  --dump-after=bench_mark --dump-after=bench_loop_hsmc --dump-after=bench_loop_raw \
  --callgrind-out-file="$dir/cg.out" --log-file="$dir/valgrind.log" \
  "$bench" --quiet --mode both --n "$n" --rounds 1 --token bench --pin-file "$dir/pin" \
  --module "$module" "${args[@]}" > "$dir/bench.out" || {
    echo "callgrind.sh: the run failed:" >&2; cat "$dir/bench.out" "$dir/valgrind.log" >&2; exit 1; }

echo "# callgrind: $(nproc) CPUs, module $module, n=$n per side; a/b exclude the token's work for the calls both sides make (t)"
/usr/bin/python3 - "$dir" "$bench" "$module" "$n" "${ops[@]}" <<'PY'
import glob, os, re, sys
from collections import defaultdict

d, exe, module, n = sys.argv[1], os.path.realpath(sys.argv[2]), os.path.realpath(sys.argv[3]), int(sys.argv[4])
ops = sys.argv[5:]

def trigger(path):
    with open(path) as f:
        for line in f:
            if line.startswith("desc: Trigger:"):
                return line.split(":", 2)[2].strip()
            if line.startswith(("fn=", "ob=")):
                break
    return ""

# The profiles dumped on leaving a loop, in order: per op, hsmc then raw.
allp = sorted(glob.glob(os.path.join(d, "cg.out.*")), key=lambda p: int(p.rsplit(".", 1)[1]))
loops = [(p, trigger(p)) for p in allp]
loops = [(p, t) for p, t in loops if t.startswith("--dump-after=bench_loop_")]
if len(loops) != 2 * len(ops):
    sys.exit("callgrind.sh: expected %d loop profiles, found %d" % (2 * len(ops), len(loops)))
dumps = []
for i in range(len(ops)):
    pair = dict((t.split("=", 1)[1], p) for p, t in loops[2 * i:2 * i + 2])
    if set(pair) != {"bench_loop_hsmc", "bench_loop_raw"}:
        sys.exit("callgrind.sh: profiles out of order at op %s" % ops[i])
    dumps += [pair["bench_loop_hsmc"], pair["bench_loop_raw"]]

def parse(path):
    """Return (total Ir, {fn: object}, arcs [(caller ob, caller fn, callee fn, calls, Ir)],
    self {(ob, fn): Ir})."""
    names = {"ob": {}, "fn": {}, "fl": {}}
    def name(kind, s):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", s.strip())
        if not m:
            return s.strip()
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), "?")
    ob = fn = cfn = None
    fn_ob = {}
    arcs = []
    selfc = defaultdict(int)
    total = 0
    pending = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending is not None:
                    arcs.append((ob, fn, pending[0], pending[1], cost))
                    pending = None
                else:
                    selfc[(ob, fn)] += cost
                continue
            key, _, val = line.partition("=")
            if key == "ob":
                ob = name("ob", val)
            elif key == "fn":
                fn = name("fn", val)
                fn_ob.setdefault(fn, ob)
            elif key == "cob":
                name("ob", val)
            elif key in ("fl", "fi", "fe", "cfi", "cfl", "jfi"):
                name("fl", val)
            elif key in ("cfn", "jfn"):
                v = name("fn", val)
                if key == "cfn":
                    cfn = v
            elif key == "calls":
                pending = (cfn, int(val.split()[0]))
            elif line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split(":")[1].split()[0])
    return total, fn_ob, arcs, selfc

def is_module(o):
    return o is not None and os.path.realpath(o) == module

def is_exe(o):
    return o is not None and os.path.realpath(o) == exe

def analyse(path):
    total, fn_ob, arcs, selfc = parse(path)
    token = 0
    calls = defaultdict(int)
    cost = defaultdict(int)
    for cob, cfn_caller, callee, k, c in arcs:
        if is_exe(cob) and is_module(fn_ob.get(callee)):
            token += c
            calls[callee] += k
            cost[callee] += c
    return dict(total=total, token=token, calls=calls, cost=cost, fn_ob=fn_ob, arcs=arcs,
                selfc=selfc)

def contributors(a):
    """Per function of the hsmc_bench binary: its own instructions plus what
    its calls into libraries other than the token cost (libc, mbedTLS).
    Functions the token calls back (mutex callbacks) are left out."""
    fn_ob, arcs, selfc = a["fn_ob"], a["arcs"], a["selfc"]
    called_by_module = defaultdict(int)
    called_by_other = defaultdict(int)
    for cob, caller, callee, k, c in arcs:
        if is_module(cob):
            called_by_module[callee] += k
        else:
            called_by_other[callee] += k
    def ours(f):  # hsmc's functions and the bench's hsmc-side wrappers
        return (f.startswith("hsmc") or f.startswith("h_")) and not (
            called_by_module[f] and not called_by_other[f])
    out = defaultdict(int)
    for (o, f), c in selfc.items():
        if is_exe(o) and ours(f):
            out[f] += c
    for cob, caller, callee, k, c in arcs:
        if is_exe(cob) and ours(caller) and not is_module(fn_ob.get(callee)) \
                and not is_exe(fn_ob.get(callee)):
            out[caller + "->" + callee.split("@")[0]] += c
    return out

details = []
for i, op in enumerate(ops):
    h, r = analyse(dumps[2 * i]), analyse(dumps[2 * i + 1])
    extra = 0
    extra_calls = []
    for f in set(h["calls"]) | set(r["calls"]):
        dk = h["calls"].get(f, 0) - r["calls"].get(f, 0)
        if dk:
            side = h if h["calls"].get(f, 0) else r
            avg = side["cost"][f] / side["calls"][f]
            extra += dk * avg
            extra_calls.append("%s%+.2f" % (f, dk / n))
    a = (h["total"] - h["token"] + extra) / n
    b = (r["total"] - r["token"]) / n
    t = r["token"] / n
    line = "op=%s n=%d hsmc_instr_per_op=%d raw_instr_per_op=%d added_instr_per_op=%d token_instr_per_op=%d" % (
        op, n, round(a), round(b), round(a) - round(b), round(t))
    if extra_calls:
        line += " extra_token_calls_per_op=" + ",".join(sorted(extra_calls))
    print(line)
    top = sorted(contributors(h).items(), key=lambda kv: -kv[1])[:10]
    details.append((op, top))
print("# hsmc side, instructions per op outside the token by function (self, and calls into libc/mbedTLS as f->callee):")
for op, top in details:
    print("#  %s: " % op + ", ".join("%s %d" % (f, round(c / n)) for f, c in top))
PY
