#!/usr/bin/env bash
# test_cli_audit.sh: `hsmc audit verify` on audit trails written here by an
# independent python writer (cbor2 + cryptography, software P-256 key, the
# format of docs/FORMATS.md "Audit records"): a good chain, an empty file,
# and damaged ones (flipped byte, truncation, removed record, wrong key, not
# CBOR), each named by record index and byte offset with exit code 12.
# test/tools/audit_check.py must agree on every file.
#   HSMC_CLI             the hsmc binary (set by ctest)
#   HSMC_TEST_BINARY_DIR build directory (fallback: $HSMC_TEST_BINARY_DIR/cli/hsmc)
set -euo pipefail

# run, ok/bad, SoftHSM2 set-up: shared by the test scripts.
. "$(dirname "$0")/cli_lib.sh"
find_hsmc
here=$(cd "$(dirname "$0")" && pwd)
CHECK="$here/../tools/audit_check.py"
new_dir cli-audit
clean_env
# stdin of every run: the empty trail the writer below makes.
run_stdin=$dir/empty.log
on_bad() { show_run err out; }

# Write N records signed with a fresh software key: $1 = N, $2 = file,
# $3 = SPKI (PEM) out. Records are deterministic except for the signature.
"$PY" - "$dir" <<'PYEOF'
import hashlib, sys
import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

d = sys.argv[1]
def chain(key, n, label="audit-v0001"):
    prot = cbor2.dumps({1: -7, 3: "application/hsmc-audit+cbor"})
    prev = bytes(32)
    out = []
    for seq in range(n):
        payload = cbor2.dumps({0: 1, 1: seq, 2: prev, 3: 1700000000 + seq, 4: "provision",
                               5: label, 6: 0, 7: "success", 9: "station",
                               10: "dev-%04d" % seq, 11: bytes([seq + 1]) * 8}, canonical=True)
        tbs = cbor2.dumps(["Signature1", prot, b"", payload])
        r, s = utils.decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        rec = cbor2.dumps(cbor2.CBORTag(18, [prot, {4: label.encode()}, payload, sig]))
        prev = hashlib.sha256(rec).digest()
        out.append(rec)
    return out

def spki(key, path):
    open(path, "wb").write(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    open(path + ".der", "wb").write(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

k1 = ec.generate_private_key(ec.SECP256R1())
open(d + "/audit.key", "wb").write(k1.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
k2 = ec.generate_private_key(ec.SECP256R1())
spki(k1, d + "/audit.spki")
spki(k2, d + "/other.spki")
recs = chain(k1, 30)
open(d + "/good.log", "wb").write(b"".join(recs))
open(d + "/empty.log", "wb").write(b"")
# flip one byte inside record 7's payload
b = bytearray(b"".join(recs))
off7 = sum(len(r) for r in recs[:7])
b[off7 + len(recs[7]) - 80] ^= 0x01
open(d + "/flip.log", "wb").write(bytes(b))
open(d + "/flip.off", "w").write(str(off7))
# cut inside record 29
whole = b"".join(recs)
open(d + "/trunc.log", "wb").write(whole[:-10])
open(d + "/trunc.off", "w").write(str(len(whole) - len(recs[29])))
# record 12 removed: record 12 of the new file (old 13) has the wrong prev
open(d + "/gap.log", "wb").write(b"".join(recs[:12] + recs[13:]))
open(d + "/gap.off", "w").write(str(sum(len(r) for r in recs[:12])))
open(d + "/junk.log", "wb").write(b"this is not an audit trail\n")
PYEOF

# 1. a good chain of 30 records, PEM and DER public key
run "$HSMC" audit verify "$dir/good.log" --pubkey "$dir/audit.spki"
if [ $rc -eq 0 ] && grep -q "records: *30$" "$dir/out" && grep -q "next seq: *30$" "$dir/out"; then
  ok "good chain: 30 records, next seq 30"
else bad "good chain (rc=$rc)"; fi
hash=$(awk '/last hash/ {print $3}' "$dir/out")
py_line=$("$PY" "$CHECK" verify "$dir/audit.spki" "$dir/good.log" || true)
if [ "$py_line" = "ok 30 30 $hash" ]; then ok "audit_check.py agrees on count and last hash"
else bad "audit_check.py says '$py_line', hsmc last hash $hash"; fi
run "$HSMC" audit verify "$dir/good.log" --pubkey "$dir/audit.spki.der" --json
if [ $rc -eq 0 ] && grep -q '"records": 30' "$dir/out" && grep -q "\"last_hash\": \"$hash\"" "$dir/out"; then
  ok "DER public key and --json"
else bad "DER / json (rc=$rc)"; fi
# (stdin from files of our own: /dev/null is not always a device in CI sandboxes)
set +e
"$HSMC" audit verify - --pubkey "$dir/audit.spki" < "$dir/empty.log" > "$dir/out0" 2> "$dir/err"
rc_empty=$?
"$HSMC" audit verify - --pubkey "$dir/audit.spki" < "$dir/good.log" > "$dir/out" 2>> "$dir/err"
rc=$?
set -e
if [ $rc -eq 0 ] && [ $rc_empty -eq 0 ] && grep -q "records: *30$" "$dir/out" &&
   grep -q "records: *0$" "$dir/out0"; then ok "reads stdin with -"
else bad "stdin (rc=$rc, empty stdin rc=$rc_empty)"; fi

# 2. an empty file is an empty, valid trail
run "$HSMC" audit verify "$dir/empty.log" --pubkey "$dir/audit.spki"
if [ $rc -eq 0 ] && grep -q "records: *0$" "$dir/out"; then ok "empty file: 0 records, ok"
else bad "empty file (rc=$rc)"; fi

# 3. damage is named by record and offset, exit code 12
expect_broken() { # file index fault-name
  local f=$1 idx=$2 fault=$3 off=${4:-}
  run "$HSMC" audit verify "$dir/$f" --pubkey "$dir/audit.spki"
  if [ $rc -eq 12 ] && grep -q "record $idx at byte ${off:-[0-9]*}: $fault" "$dir/err"; then
    ok "$f: record $idx named ($fault), exit 12"
  else bad "$f: expected record $idx '$fault' exit 12 (rc=$rc)"; fi
  local p
  p=$("$PY" "$CHECK" verify "$dir/audit.spki" "$dir/$f" || true)
  case "$p" in
    "FAIL $idx "*) ok "$f: audit_check.py also names record $idx" ;;
    *) bad "$f: audit_check.py says '$p'" ;;
  esac
}
expect_broken flip.log 7 "bad signature" "$(cat "$dir/flip.off")"
expect_broken trunc.log 29 "truncated" "$(cat "$dir/trunc.off")"
expect_broken gap.log 12 "prev mismatch" "$(cat "$dir/gap.off")"
expect_broken junk.log 0 "malformed" 0
run "$HSMC" audit verify "$dir/good.log" --pubkey "$dir/other.spki"
if [ $rc -eq 12 ] && grep -q "record 0 at byte 0: bad signature" "$dir/err"; then
  ok "another key's public key: record 0 bad signature"
else bad "wrong key (rc=$rc)"; fi

# 4. --key: the same key imported into a SoftHSM2 token, verified by the token
if command -v softhsm2-util >/dev/null; then
  softhsm_dir "$dir"
  new_token station
  pin_file "$dir/pin"
  run "$HSMC" --token station --pin-file "$dir/pin" key import --label audit-v0001 --alg p256 \
    --in "$dir/audit.key"
  rm -f "$dir/audit.key"
  if [ $rc -eq 0 ]; then ok "audit key imported into the token"; else bad "key import (rc=$rc)"; fi
  run "$HSMC" --token station --pin-file "$dir/pin" audit verify "$dir/good.log" --key audit-v0001
  if [ $rc -eq 0 ] && grep -q "records: *30$" "$dir/out" && grep -q "$hash" "$dir/out"; then
    ok "--key: verified by the token, same count and hash"
  else bad "--key (rc=$rc)"; fi
  run "$HSMC" --token station --pin-file "$dir/pin" audit verify "$dir/gap.log" --key audit-v0001
  if [ $rc -eq 12 ] && grep -q "record 12 at byte" "$dir/err"; then ok "--key: broken chain named"
  else bad "--key gap (rc=$rc)"; fi
  run "$HSMC" --token station --pin-file "$dir/pin" audit verify "$dir/good.log" --key nokey
  if [ $rc -eq 6 ]; then ok "--key: unknown label is exit 6"; else bad "--key unknown (rc=$rc)"; fi
fi

# 5. usage and I/O errors
run "$HSMC" audit verify "$dir/missing.log" --pubkey "$dir/audit.spki"
if [ $rc -eq 1 ] && grep -q "cannot open audit file" "$dir/err"; then ok "missing file: exit 1"
else bad "missing file (rc=$rc)"; fi
run "$HSMC" audit verify "$dir/good.log"
if [ $rc -eq 2 ]; then ok "no key given: usage error"; else bad "no key (rc=$rc)"; fi
run "$HSMC" audit verify "$dir/good.log" --pubkey "$dir/junk.log"
if [ $rc -eq 2 ] && grep -q "PUBLIC KEY" "$dir/err"; then ok "--pubkey not a key: usage error"
else
  # a file that is not PEM is taken as DER; the verifier then refuses it
  if [ $rc -ne 0 ]; then ok "--pubkey not a key: refused (rc=$rc)"; else bad "--pubkey junk accepted"; fi
fi
run "$HSMC" audit --help
if [ $rc -eq 0 ] && grep -q "verify" "$dir/out"; then ok "audit --help"; else bad "audit --help"; fi

summary
