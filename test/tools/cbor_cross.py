#!/usr/bin/python3
"""Cross-check hsmc's CBOR codec against python3-cbor2.

usage: cbor_cross.py DRIVER [COUNT] [MUTANTS_PER_ITEM]

1. Generates COUNT random nested structures (fixed seed): integers at
   every argument-width boundary and at random inside each width, both
   signs, down to -2^64; byte and text strings (ASCII, 2/3/4-byte UTF-8)
   with lengths at the width boundaries; arrays; maps with integer and
   text keys; tags of every head width; false/true/null/undefined. Each
   is encoded with cbor2 canonical=True and must come back from the driver
   byte for byte (hsmc decodes it and re-encodes it). The driver also says,
   per map, whether hsmc_cbor_map_sorted() found its keys in RFC 8949
   §4.2.1 bytewise order; that must equal this script's own computation.
   Nesting exactly HSMC_CBOR_MAX_DEPTH deep must pass, one deeper be
   rejected.
2. Mutates each valid encoding (bit flips, byte overwrites with
   interesting values, truncation, insertion, deletion, splices) and
   requires that hsmc either rejects the result or re-encodes it
   identically. Two oracles with cbor2: what hsmc accepts (tag-free)
   cbor2 must decode; what cbor2 decodes and re-encodes to the same bytes
   (tag-, float- and simple-free, not too deep) hsmc must accept.
Prints "N passed, N failed"; exit 1 on any failure.
"""
import random
import struct
import subprocess
import sys
import tempfile

import cbor2

SEED = 8949

BOUNDARIES = [0, 1, 23, 24, 25, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff,
              0x100000000, 0xffffffffffffffff]
WIDTH_RANGES = [(0, 23), (24, 0xff), (0x100, 0xffff), (0x10000, 0xffffffff),
                (0x100000000, 0xffffffffffffffff)]
# Tag numbers cbor2 gives no meaning to, one per head width.
TAGS = [16, 17, 18, 19, 96, 97, 98, 61, 1000, 0xffff, 0x10000, 0xffffffff,
        0x100000000, 0xffffffffffffffff]
STR_LENS = [0, 1, 23, 24, 25, 255, 256, 300]
ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz0123456789",
    "\u00e9\u00fc\u00df\u0394\u03a9\u0436",            # 2-byte UTF-8
    "\u6c34\u20ac\u3042\ud7ff\ue000\uffff\u0800",      # 3-byte, incl. edges
    "\U00010151\U0001f600\U0010ffff\U00010000",        # 4-byte, incl. edges
]


def rand_uint(rng):
    if rng.random() < 0.4:
        return rng.choice(BOUNDARIES)
    lo, hi = rng.choice(WIDTH_RANGES)
    return rng.randint(lo, hi)


def rand_int(rng):
    v = rand_uint(rng)
    return v if rng.random() < 0.5 else -1 - v


def rand_len(rng, small):
    if small or rng.random() < 0.7:
        return rng.randint(0, 12)
    return rng.choice(STR_LENS)


def rand_text(rng, small=False):
    n = rand_len(rng, small)
    return "".join(rng.choice(rng.choice(ALPHABETS)) for _ in range(n))


def rand_bytes(rng, small=False):
    return bytes(rng.getrandbits(8) for _ in range(rand_len(rng, small)))


def rand_key(rng):
    return rand_int(rng) if rng.random() < 0.7 else rand_text(rng, small=True)


def rand_scalar(rng):
    k = rng.randrange(6)
    if k == 0:
        return rand_int(rng)
    if k == 1:
        return rand_bytes(rng)
    if k == 2:
        return rand_text(rng)
    return rng.choice([False, True, None, cbor2.undefined])


def rand_item(rng, depth_left, top=False):
    """A random item nesting at most depth_left arrays/maps; top-level
    items are always containers (or tags over one)."""
    r = rng.uniform(0.45, 1.0) if top else rng.random()
    if depth_left == 0 or r < 0.45:
        return rand_scalar(rng)
    if r < 0.65:
        # Long arrays (count in a one-byte argument) only near the leaves,
        # so the structures stay small.
        n = rng.randint(23, 26) if depth_left <= 2 and rng.random() < 0.1 else rng.randint(0, 5)
        return [rand_item(rng, depth_left - 1) for _ in range(n)]
    if r < 0.85:
        m = {}
        for _ in range(rng.randint(0, 6)):
            m[rand_key(rng)] = rand_item(rng, depth_left - 1)
        return m
    return cbor2.CBORTag(rng.choice(TAGS), rand_item(rng, depth_left, top))


def nest(depth, leaf):
    v = leaf
    for i in range(depth):
        v = [v] if i % 2 == 0 else {i: v}
    return v


def key_bytes(k):
    return cbor2.dumps(k, canonical=True)


def map_flags(obj, out):
    """Per map of >= 2 pairs, in document (pre-)order: 's' when its encoded
    keys are strictly increasing bytewise (RFC 8949 §4.2.1), else 'u'."""
    if isinstance(obj, cbor2.CBORTag):
        map_flags(obj.value, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            map_flags(v, out)
    elif isinstance(obj, dict):
        keys = [key_bytes(k) for k in obj]
        if len(keys) >= 2:
            out.append("s" if all(a < b for a, b in zip(keys, keys[1:])) else "u")
        for v in obj.values():
            map_flags(v, out)
    return out


PLAIN = (int, bytes, str, bool, type(None), type(cbor2.undefined))


def plain_depth(obj):
    """Nesting depth of arrays/maps, or None when obj holds anything hsmc
    rejects by design or cbor2 interprets (floats, simple values, tags)."""
    if isinstance(obj, cbor2.CBORSimpleValue):  # a namedtuple: test it first
        return None
    if isinstance(obj, PLAIN):
        return 0
    if isinstance(obj, (list, tuple)):
        ds = [plain_depth(v) for v in obj]
    elif isinstance(obj, dict):
        ds = [plain_depth(v) for kv in obj.items() for v in kv]
    else:
        return None
    if any(d is None for d in ds):
        return None
    return 1 + max(ds, default=0)


INTERESTING = [0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x3b, 0x5b,
               0x5f, 0x7b, 0x7f, 0x9b, 0x9f, 0xbb, 0xbf, 0xc0, 0xdb, 0xf4,
               0xf7, 0xf8, 0xf9, 0xfb, 0xff, 0x80, 0xa0, 0xc3, 0xed, 0xf0]


def mutate(rng, data):
    b = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op = rng.randrange(7)
        if not b:
            b.append(rng.choice(INTERESTING))
            continue
        i = rng.randrange(len(b))
        if op == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            b[i] = rng.choice(INTERESTING)
        elif op == 2:
            b[i] = rng.getrandbits(8)
        elif op == 3:
            del b[rng.randrange(len(b)):]
        elif op == 4:
            b.insert(i, rng.choice(INTERESTING))
        elif op == 5:
            del b[i]
        else:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 8)]
    return bytes(b)


def run_driver(driver, inputs):
    with tempfile.NamedTemporaryFile(suffix=".rec") as f:
        for data in inputs:
            f.write(struct.pack(">I", len(data)) + data)
        f.flush()
        res = subprocess.run([driver, f.name], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=600)
    if res.returncode != 0:
        sys.stderr.write(res.stderr.decode(errors="replace"))
        raise SystemExit("driver exited with %d" % res.returncode)
    lines = res.stdout.decode().splitlines()
    depth = int(lines[0].split()[1])
    out = []
    for line in lines[1:]:
        parts = line.split(" ", 3)
        if parts[0] == "OK":
            out.append(("OK", parts[1], parts[2] == "1", bytes.fromhex(parts[3]) if len(parts) > 3 else b""))
        else:
            out.append((parts[0], " ".join(parts[1:]), False, None))
    if len(out) != len(inputs):
        raise SystemExit("driver answered %d of %d inputs" % (len(out), len(inputs)))
    return depth, out


def main(argv):
    driver = argv[1]
    count = int(argv[2]) if len(argv) > 2 else 400
    per_item = int(argv[3]) if len(argv) > 3 else 20
    rng = random.Random(SEED)
    passed = failed = 0

    def fail(msg):
        nonlocal failed
        failed += 1
        if failed <= 20:
            print("FAIL " + msg)

    depth, _ = run_driver(driver, [b"\x00"])

    # --- 1. valid structures -------------------------------------------
    items = []
    for b in BOUNDARIES:
        items += [b, -1 - b]
    items += [b"\x01" * 70000, "\U0010ffff" * 70, nest(depth, 0), nest(depth - 1, {}),
              {10: 1, 24: 2, -1: 3, "a": 4, 0x10000: 5}]
    while len(items) < count:
        # Random ones nest at most 10 deep (they grow exponentially).
        items.append(rand_item(rng, rng.randint(1, min(depth, 10)), top=True))
    too_deep = [nest(depth + 1, 0), nest(depth + 1, []), nest(depth + 3, "x")]

    encoded = [cbor2.dumps(v, canonical=True) for v in items]
    deep_enc = [cbor2.dumps(v, canonical=True) for v in too_deep]
    _, answers = run_driver(driver, encoded + deep_enc)
    unsorted_maps = 0
    for data, obj, (kind, maps, _tags, out) in zip(encoded, items, answers):
        if kind != "OK":
            fail("valid %s rejected: %s %s" % (data[:40].hex(), kind, maps))
            continue
        if out != data:
            fail("round trip differs for %s" % data[:40].hex())
            continue
        want = "".join(map_flags(cbor2.loads(data), [])) or "-"
        if maps != want:
            fail("map order verdicts %s, expected %s for %s" % (maps, want, data[:60].hex()))
            continue
        unsorted_maps += maps.count("u")
        passed += 1
    for data, (kind, why, _tags, _out) in zip(deep_enc, answers[len(encoded):]):
        if kind == "REJECT" and "deeper" in why:
            passed += 1
        else:
            fail("nesting deeper than %d not rejected: %s %s" % (depth, kind, why))
    print("valid: %d structures round-tripped (%d maps not in RFC 8949 order, as cbor2's "
          "canonical=True sorts length-first)" % (len(encoded), unsorted_maps))

    # --- 2. mutations ----------------------------------------------------
    mutants = []
    for data in encoded:
        if len(data) > 4096:
            continue
        seen = set()
        for _ in range(per_item):
            m = mutate(rng, data)
            if m not in seen:
                seen.add(m)
                mutants.append(m)
    _, answers = run_driver(driver, mutants)
    acc = rej = det = 0
    for data, (kind, info, tags, out) in zip(mutants, answers):
        if kind == "BUG":
            fail("hsmc inconsistent on %s: %s" % (data[:60].hex(), info))
            continue
        if kind == "OK" and out != data:
            fail("accepted %s but re-encoded %s" % (data[:60].hex(), out[:60].hex()))
            continue
        try:
            obj, cbor_err = cbor2.loads(data), None
        except Exception as e:  # noqa: BLE001  (any cbor2 refusal)
            obj, cbor_err = None, e
        if kind == "OK":
            acc += 1
            # b"" is an empty CBOR sequence for hsmc, no item for cbor2.
            if cbor_err is not None and not tags and data:
                fail("hsmc accepts %s, cbor2 refuses it: %s" % (data.hex(), cbor_err))
                continue
        else:
            rej += 1
        # Input cbor2 reads and would itself write identically, with
        # nothing hsmc rejects by design: hsmc must accept it.
        if cbor_err is None:
            d = plain_depth(obj)
            try:
                canon = cbor2.dumps(obj, canonical=True)
            except Exception:  # noqa: BLE001
                canon = None
            if d is not None and d <= depth and canon == data:
                det += 1
                if kind != "OK":
                    fail("hsmc rejects deterministic %s (%s)" % (data.hex(), info))
                    continue
        passed += 1
    print("mutants: %d fed, %d accepted (each round-tripped), %d rejected; %d were "
          "deterministic for cbor2 too (all accepted)" % (len(mutants), acc, rej, det))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
