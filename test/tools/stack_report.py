#!/usr/bin/python3
"""Worst-case stack per public hsmc call, from GCC call-graph files.

Input: the .ci files GCC writes with -fcallgraph-info=su (VCG text: one
node per function with its frame size, one edge per call site), one per
object. The graphs of all objects are merged, so calls between objects are
followed. For every exported function named hsmc_* (not hsmc__*) the report
gives the deepest call path and its stack: hsmc's own frames, as measured by
GCC, plus an *assumed* cost for each external function (C library, libgcc,
mbedTLS) at the end of a path, since those objects are not compiled here.
Calls through a function pointer (the PKCS#11 module's C_* functions,
callbacks) and direct calls into a module are not counted: the row says
"+ module/callback stack" instead.

Usage: stack_report.py [--assume NAME=BYTES]... [--warn BYTES] FILE.ci...

If FILE.su (from -fstack-usage) sits next to FILE.ci, every frame in the
graph is checked against it. Exit status: 0 after a report (sizes never fail
it; calls over --warn bytes get a WARN line), 2 on malformed or inconsistent
input or bad arguments.
"""

import argparse
import os
import re
import sys

# Assumed stack of external functions (bytes, whole call tree of the
# function). None of this is measured by this tool; each figure was measured
# once, by hand, for the thumb/v7e-m/nofp multilib that -mcpu=cortex-m4
# -mthumb selects, and holds only for that build of that library:
# - Debian's arm-none-eabi newlib 3.3 and libgcc 12.2, from disassembly (sum
#   of prologue pushes and sp adjustments along the deepest direct call
#   chain): snprintf 400 and vsnprintf 384 in newlib-nano (snprintf >
#   _svfprintf_r > _printf_i > _printf_common > __ssputs_r); full newlib is
#   larger, 488 and 472 without floating point formats (hsmc prints none);
#   mem*/str* leaf routines 0-16; __aeabi_[u]ldivmod 48.
# - mbedTLS 2.28.3 (Debian's version and configuration, trimmed as in
#   test_stack.sh) compiled with this report's flags and walked by this
#   tool: mbedtls_md 1092 (SHA-512: mbedtls_sha512_ret >
#   mbedtls_sha512_update_ret > mbedtls_internal_sha512_process).
#   MBEDTLS_SHA512_SMALLER or another mbedTLS version changes it.
# Override any of them with --assume NAME=BYTES for another library build.
NEWLIB_NANO = "newlib-nano 3.3, integer/string formats"
MBEDTLS_2_28 = "mbedTLS 2.28.3, Debian config, measured once"
ASSUMED = {
    "snprintf": (400, NEWLIB_NANO),
    "vsnprintf": (384, NEWLIB_NANO),
    "__aeabi_uldivmod": (48, "libgcc 12.2"),
    "__aeabi_ldivmod": (48, "libgcc 12.2"),
    "mbedtls_md": (1092, MBEDTLS_2_28),
    "mbedtls_md_info_from_type": (0, MBEDTLS_2_28),
    "mbedtls_md_get_size": (0, MBEDTLS_2_28),
    "mbedtls_md_init": (0, MBEDTLS_2_28),
    "mbedtls_md_starts": (64, MBEDTLS_2_28),
    "mbedtls_md_update": (852, MBEDTLS_2_28),
    "mbedtls_md_finish": (840, MBEDTLS_2_28),
}
for _leaf in ("memcpy", "memmove", "memset", "memcmp", "memchr", "strlen",
              "strnlen", "strchr", "strrchr", "strcpy", "strncpy", "strcmp",
              "strncmp", "strspn", "strcspn", "__aeabi_memcpy",
              "__aeabi_memset", "__aeabi_memclr", "__aeabi_memmove"):
    ASSUMED[_leaf] = (16, "newlib 3.3 leaf routine (measured 0-16)")

# Families priced by prefix when the exact name is not in ASSUMED.
ASSUMED_PREFIX = [
    ("__aeabi_", 48, "libgcc helper (largest measured: ldivmod 48)"),
    ("mbedtls_", 1024, "GUESS: mbedTLS routine never measured; its hash, "
                       "bignum and x509 code keeps contexts and buffers on "
                       "the stack"),
]
# Anything else that has no node: a guess, listed so a reader can fix it.
ASSUMED_DEFAULT = (64, "GUESS: unknown external")

INDIRECT = "__indirect_call"
MODULE_RE = re.compile(r"^C_[A-Za-z]")  # PKCS#11 entry points of a linked module

NODE_RE = re.compile(r'^node: \{ title: "(?P<title>[^"]*)" label: "(?P<label>[^"]*)"'
                     r'(?P<shape> shape : ellipse)? \}$')
EDGE_RE = re.compile(r'^edge: \{ sourcename: "(?P<src>[^"]*)" targetname: "(?P<dst>[^"]*)"'
                     r'(?: label: "(?P<site>[^"]*)")? \}$')
GRAPH_RE = re.compile(r'^graph: \{ title: "[^"]*"$')
FRAME_RE = re.compile(r"^(?P<bytes>\d+) bytes \((?P<qual>static|dynamic|dynamic,bounded)\)$")


class InputError(Exception):
    """Malformed or inconsistent input: reported, exit status 2."""


class Func:
    """A function defined in one of the objects."""

    def __init__(self, title, name, loc, frame, qual, obj):
        self.title = title      # unique key: "name" if exported, "file:name" if not
        self.name = name        # name as GCC prints it (clones keep their suffix)
        self.loc = loc          # file:line:col of the definition
        self.frame = frame      # bytes, from GCC's stack usage
        self.qual = qual        # static | dynamic | dynamic,bounded
        self.obj = obj          # .ci file it came from
        self.callees = []       # titles, in file order, duplicates removed

    @property
    def exported(self):
        return ":" not in self.title


def parse_ci(path, funcs):
    """Add one .ci file's nodes and edges to funcs (externals get no entry)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc
    body = [(n, l.strip()) for n, l in enumerate(lines, 1) if l.strip()]
    if not body or not GRAPH_RE.match(body[0][1]) or body[-1][1] != "}":
        raise InputError(f"{path}: not a GCC -fcallgraph-info graph "
                         "(want 'graph: { title: ...' ... '}')")
    edges = []
    for lineno, line in body[1:-1]:
        m = NODE_RE.match(line)
        if m:
            title, label = m.group("title"), m.group("label").split("\\n")
            if m.group("shape"):
                continue
            fm = FRAME_RE.match(label[-1]) if len(label) == 3 else None
            if not fm:
                raise InputError(f"{path}:{lineno}: node '{title}' has no stack size "
                                 "(compile with -fcallgraph-info=su)")
            if title in funcs:
                raise InputError(f"{path}:{lineno}: '{title}' is also defined in "
                                 f"{funcs[title].obj}")
            funcs[title] = Func(title, label[0], label[1], int(fm.group("bytes")),
                                fm.group("qual"), path)
            continue
        m = EDGE_RE.match(line)
        if m:
            edges.append((lineno, m.group("src"), m.group("dst")))
            continue
        raise InputError(f"{path}:{lineno}: unexpected line: {line[:80]}")
    for lineno, src, dst in edges:
        fn = funcs.get(src)
        if fn is None or fn.obj != path:
            raise InputError(f"{path}:{lineno}: edge from '{src}', which this file "
                             "does not define")
        if dst not in fn.callees:
            fn.callees.append(dst)


def check_su(ci_path, funcs):
    """Compare the graph's frames with the .su file next to it, if any."""
    su_path = os.path.splitext(ci_path)[0] + ".su"
    if not os.path.exists(su_path):
        return 0
    su = {}
    with open(su_path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.rstrip("\n").split("\t")
            m = re.match(r"^(.*:\d+:\d+):[^:]*$", parts[0])
            if len(parts) != 3 or not m or not parts[1].isdigit():
                raise InputError(f"{su_path}:{lineno}: malformed -fstack-usage line")
            su[m.group(1)] = int(parts[1])
    checked = 0
    for fn in funcs.values():
        if fn.obj != ci_path:
            continue
        if fn.loc not in su:
            raise InputError(f"{ci_path}: {fn.name} ({fn.loc}) is missing from {su_path}")
        if su[fn.loc] != fn.frame:
            raise InputError(f"{ci_path}: {fn.name} has {fn.frame} bytes in the graph "
                             f"but {su[fn.loc]} in {su_path}")
        checked += 1
    return checked


def assumed_cost(name, overrides):
    """(bytes, why) for an external function without a node."""
    if name in overrides:
        return overrides[name], "--assume"
    if name in ASSUMED:
        return ASSUMED[name]
    for prefix, nbytes, why in ASSUMED_PREFIX:
        if name.startswith(prefix):
            return nbytes, why
    return ASSUMED_DEFAULT


def find_cycles(funcs):
    """Strongly connected components that are cycles (Tarjan, iterative)."""
    index, low, onstack, stack, cycles = {}, {}, set(), [], []
    counter = 0
    for root in sorted(funcs):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                onstack.add(v)
            callees = [c for c in funcs[v].callees if c in funcs]
            if i < len(callees):
                work.append((v, i + 1))
                w = callees[i]
                if w not in index:
                    work.append((w, 0))
                elif w in onstack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    onstack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in funcs[v].callees:
                    cycles.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return cycles


class Analysis:
    """Worst-case depth per function over the merged graph."""

    def __init__(self, funcs, overrides):
        self.funcs = funcs
        self.overrides = overrides
        self.cycles = find_cycles(funcs)
        self.in_cycle = {t for comp in self.cycles for t in comp}
        self.memo = {}
        self.used_externals = {}

    def worst(self, title):
        """(total, assumed_part, path, unbounded_reason) for a defined function."""
        if title in self.memo:
            return self.memo[title]
        fn = self.funcs[title]
        if title in self.in_cycle:
            res = (None, 0, [fn.name], "recursion")
            self.memo[title] = res
            return res
        best = (0, 0, [], None)
        for callee in fn.callees:
            if callee == INDIRECT or MODULE_RE.match(callee):
                continue
            if callee in self.funcs:
                cand = self.worst(callee)
            else:
                nbytes, why = assumed_cost(callee, self.overrides)
                self.used_externals[callee] = (nbytes, why)
                cand = (nbytes, nbytes, [callee + " (assumed)"], None)
            if cand[3]:
                best = cand
                break
            if cand[0] > best[0] or (cand[0] == best[0] and not best[2]):
                best = cand
        if best[3]:
            res = (None, 0, [fn.name] + best[2], best[3])
        elif fn.qual == "dynamic":
            res = (None, 0, [fn.name], "dynamic frame (alloca/VLA)")
        else:
            res = (fn.frame + best[0], best[1], [fn.name] + best[2], None)
        self.memo[title] = res
        return res

    def reaches_indirect(self, title):
        """Does any call path from title go through a pointer or into a module?"""
        seen, todo = set(), [title]
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            for callee in self.funcs[t].callees:
                if callee == INDIRECT or MODULE_RE.match(callee):
                    return True
                if callee in self.funcs:
                    todo.append(callee)
        return False


def main(argv):
    ap = argparse.ArgumentParser(description="worst-case stack per public hsmc call")
    ap.add_argument("files", nargs="+", metavar="FILE.ci")
    ap.add_argument("--assume", action="append", default=[], metavar="NAME=BYTES",
                    help="assumed stack of an external function")
    ap.add_argument("--warn", type=int, default=1024, metavar="BYTES",
                    help="WARN about public calls deeper than this (default 1024)")
    args = ap.parse_args(argv)

    overrides = {}
    for item in args.assume:
        name, sep, nbytes = item.partition("=")
        if not sep or not name or not nbytes.isdigit():
            print(f"stack_report: bad --assume '{item}' (want NAME=BYTES)", file=sys.stderr)
            return 2
        overrides[name] = int(nbytes)

    funcs = {}
    try:
        for path in args.files:
            parse_ci(path, funcs)
        checked = sum(check_su(path, funcs) for path in args.files)
    except InputError as exc:
        print(f"stack_report: {exc}", file=sys.stderr)
        return 2

    an = Analysis(funcs, overrides)
    public = [t for t, f in funcs.items()
              if f.exported and f.name.startswith("hsmc_") and not f.name.startswith("hsmc__")]
    if not public:
        print("stack_report: no exported hsmc_* function in the input", file=sys.stderr)
        return 2

    rows = []
    for t in public:
        total, assumed, path, why = an.worst(t)
        rows.append((t, total, assumed, path, why, an.reaches_indirect(t)))
    rows.sort(key=lambda r: (r[1] is not None, -(r[1] or 0), r[0]))

    print(f"Worst-case stack per public call: {len(public)} functions, "
          f"{len(funcs)} function frames from {len(args.files)} objects"
          + (f" (frames checked against .su: {checked})" if checked else ""))
    print()
    print("| function | worst case (bytes) | of which assumed externals | "
          "deepest path | indirect calls |")
    print("|---|---:|---:|---|---|")
    for t, total, assumed, path, why, indirect in rows:
        size = f"unbounded ({why})" if why else str(total)
        print(f"| {t} | {size} | {assumed if not why else '-'} | {' > '.join(path)} | "
              f"{'+ module/callback stack' if indirect else 'no'} |")
    print()

    for comp in an.cycles:
        names = [funcs[t].name for t in comp]
        print("RECURSION: cycle through " + " > ".join(names + names[:1]))
    if an.used_externals:
        print("Assumed costs of external functions (not measured by this report):")
        for name in sorted(an.used_externals):
            nbytes, why = an.used_externals[name]
            print(f"  {name}: {nbytes} bytes assumed; {why}")
    print("Not counted: calls through function pointers and into the PKCS#11 "
          "module (C_*); rows marked '+ module/callback stack' need that on top.")
    dyn = sorted(f.name for f in funcs.values() if f.qual == "dynamic,bounded")
    if dyn:
        print("Frames with a bounded dynamic part (upper bound used): " + ", ".join(dyn))

    for t, total, _, _, why, _ in rows:
        if why:
            print(f"WARN: {t}: stack unbounded ({why})")
        elif total > args.warn:
            print(f"WARN: {t}: {total} bytes, over {args.warn}")
    t, total, assumed, _, why, _ = rows[0]
    if why:
        print(f"Largest public call: {t}, unbounded ({why})")
    else:
        print(f"Largest public call: {t}, {total} bytes ({assumed} of them assumed externals)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
