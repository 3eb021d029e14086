#!/usr/bin/env bash
# test_cli_crypto.sh: `hsmc sign|verify|wrap|unwrap|encrypt|decrypt|rewrap`
# against fresh SoftHSM2 tokens. Signatures are checked by openssl, COSE
# structures by python3-cbor2 and test/tools/cose_check.py, round trips byte
# for byte.
#   HSMC_CLI             the hsmc binary (set by ctest)
#   HSMC_TEST_BINARY_DIR build directory (fallback: $HSMC_TEST_BINARY_DIR/cli/hsmc)
#   HSMC_TEST_MODULE     SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)
set -euo pipefail

# run, check, ok/bad, SoftHSM2 set-up: shared by the test scripts.
. "$(dirname "$0")/cli_lib.sh"
find_hsmc
# The independent COSE reader (docs/FORMATS.md), for what rewrap writes.
COSE_CHECK="$(cd "$(dirname "$0")/../tools" && pwd)/cose_check.py"
need_tools softhsm2-util pkcs11-tool openssl "$PY"
new_dir cli-crypto
test_tokens test other
# Token "test" unless a command says --token other.
export HSMC_TOKEN=test HSMC_PIN_FILE="$dir/pin"
# stdout may be binary: only stderr is shown with a failure.
on_bad() { show_run err; }
# ctcheck NAME FILE WANT: the first item of FILE (an envelope, or a stream's header) has
# content type WANT ("none": no label 3) in its protected bucket only, keys in bytewise order.
ctcheck() {
  local name=$1 file=$2 want=$3 msg
  if msg=$("$PY" - "$file" "$want" 2>&1 <<'PYEOF'
import cbor2, sys
m = cbor2.CBORDecoder(open(sys.argv[1], 'rb')).decode()
assert m.tag in (16, 96), m.tag
prot = cbor2.loads(m.value[0])
keys = [cbor2.dumps(k) for k in prot]
assert keys == sorted(keys), 'protected keys not in bytewise order: %r' % prot
assert 3 not in m.value[1], 'label 3 in the unprotected bucket: %r' % m.value[1]
got = prot.get(3, 'none')
assert got == sys.argv[2], 'content type %r, want %r' % (got, sys.argv[2])
PYEOF
  ); then ok "$name"; else bad "$name: $msg"; fi
}

H="$HSMC"
$H key gen --label p256 --alg p256 >/dev/null
$H key gen --label p384 --alg p384 >/dev/null
$H key gen --label p521 --alg p521 >/dev/null
$H key gen --label rsa --alg rsa2048 --usage sign,decrypt,unwrap >/dev/null
$H key gen --label ed --alg ed25519 >/dev/null
$H key gen --label kek --purpose kek >/dev/null
$H key gen --label dk --purpose data >/dev/null
for k in p256 p384 p521 rsa ed; do $H key export-pub "$k" --out "$dir/$k.pub"; done
printf 'firmware image 1.2.3\n' > "$dir/msg"
head -c 5000 /dev/urandom > "$dir/bin"
cp "$dir/msg" "$dir/tampered"; printf 'X' >> "$dir/tampered"

# ---- sign / verify: bare signatures checked by openssl ------------------------------------
for spec in p256:ES256:sha256 p384:ES384:sha384 p521:ES512:sha512 rsa:RS256:sha256 \
            rsa:RS512:sha512 rsa:PS256:sha256 rsa:PS384:sha384 ed:EdDSA:-; do
  IFS=: read -r key alg hash <<< "$spec"
  run $H sign --key "$key" --alg "$alg" --file "$dir/msg" --format der --out "$dir/sig.$alg"
  check "sign $alg --format der" 0
  case $alg in
    PS*) v=(openssl dgst "-$hash" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
            -verify "$dir/$key.pub" -signature "$dir/sig.$alg" "$dir/msg") ;;
    EdDSA) v=(openssl pkeyutl -verify -pubin -inkey "$dir/$key.pub" -rawin -in "$dir/msg"
              -sigfile "$dir/sig.$alg") ;;
    *) v=(openssl dgst "-$hash" -verify "$dir/$key.pub" -signature "$dir/sig.$alg" "$dir/msg") ;;
  esac
  if "${v[@]}" >/dev/null 2>&1; then ok "openssl verifies the $alg signature"; else bad "openssl rejects the $alg signature"; fi
  run $H verify --key "$key" --alg "$alg" --format der --sig "$dir/sig.$alg" --file "$dir/msg"
  check "verify $alg --format der" 0 '' "signature valid \\($alg"
  run $H verify --key "$key" --alg "$alg" --format der --sig "$dir/sig.$alg" --file "$dir/tampered"
  check "verify $alg, tampered file: exit 8" 8 '' 'does not verify'
  # COSE_Sign1, attached, verified by the kid and without the token.
  run $H sign --key "$key" --alg "$alg" --message "payload $alg" --out "$dir/c.$alg"
  check "sign $alg (COSE_Sign1)" 0
  run $H verify --sig "$dir/c.$alg" --out "$dir/payload"
  check "verify $alg COSE_Sign1 by kid" 0 '' "signature valid \\($alg, key '$key'\\)"
  if [ "$(cat "$dir/payload")" = "payload $alg" ]; then ok "verify --out: the payload"; else bad "verify --out wrote '$(cat "$dir/payload")'"; fi
  if [ "$alg" != EdDSA ]; then
    run env -u HSMC_PIN_FILE $H verify --sig "$dir/c.$alg" --pub "$dir/$key.pub"
    check "verify $alg COSE_Sign1 with --pub (no PIN, no token)" 0 '' 'signature valid'
  fi
done
run $H sign --key p256 --file "$dir/msg" --format raw --out "$dir/sig.raw"
check "sign --format raw" 0
[ "$(stat -c %s "$dir/sig.raw")" = 64 ] && ok "raw ECDSA P-256 signature is r||s (64 bytes)" || bad "raw signature is $(stat -c %s "$dir/sig.raw") bytes"
run $H verify --key p256 --format raw --sig "$dir/sig.raw" --file "$dir/msg"
check "verify --format raw" 0
run $H verify --key p256 --format der --sig "$dir/sig.raw" --file "$dir/msg"
check "raw signature given as der: exit 8 with hint" 8 '' 'was it made with --format raw'

# Default algorithms, digest signing.
run $H sign --key rsa --file "$dir/msg" --out "$dir/c.def"
pycheck_file "COSE_Sign1 default alg for RSA is PS256, kid is the label" "$dir/c.def" "
import cbor2, sys
m = cbor2.loads(open(sys.argv[1], 'rb').read())
assert m.tag == 18 and len(m.value) == 4, m
prot = cbor2.loads(m.value[0])
assert prot[1] == -37, prot
assert m.value[1][4] == b'rsa', m.value[1]
assert m.value[2] == open('$dir/msg', 'rb').read()
"
dig=$(sha256sum "$dir/msg" | cut -c1-64)
run $H sign --key p256 --digest-hex "$dig" --format der --out "$dir/sig.dig"
check "sign --digest-hex" 0
if openssl dgst -sha256 -verify "$dir/p256.pub" -signature "$dir/sig.dig" "$dir/msg" >/dev/null 2>&1; then
  ok "openssl verifies the --digest-hex signature over the file"; else bad "openssl rejects the --digest-hex signature"; fi
run $H verify --key p256 --format der --sig "$dir/sig.dig" --digest-hex "$dig"
check "verify --digest-hex" 0
run $H sign --key rsa --alg RS256 --digest-hex "$dig" --format der --out "$dir/sig.rdig"
if openssl dgst -sha256 -verify "$dir/rsa.pub" -signature "$dir/sig.rdig" "$dir/msg" >/dev/null 2>&1; then
  ok "openssl verifies an RS256 --digest-hex signature"; else bad "openssl rejects the RS256 digest signature"; fi
run $H sign --key p256 --digest-hex "$dig"
check "--digest-hex with COSE: exit 2" 2 '' 'goes with --format der or raw'
run $H sign --key p256 --digest-hex abcd --format der
check "--digest-hex of the wrong length: exit 2" 2 '' 'needs a 32-byte digest'
run $H sign --key ed --digest-hex "$dig" --format der
check "--digest-hex with EdDSA: exit 2" 2 '' 'EdDSA signs the message'

# Detached COSE_Sign1, AAD, tampering.
run $H sign --key p256 --file "$dir/bin" --detached --aad fw-v1 --out "$dir/det.cose"
check "sign --detached --aad" 0
pycheck_file "detached COSE_Sign1 has a nil payload" "$dir/det.cose" "
import cbor2, sys
m = cbor2.loads(open(sys.argv[1], 'rb').read())
assert m.tag == 18 and m.value[2] is None, m
"
run $H verify --sig "$dir/det.cose" --file "$dir/bin" --aad fw-v1
check "verify detached with the data and AAD" 0
run $H verify --sig "$dir/det.cose" --file "$dir/msg" --aad fw-v1
check "verify detached, other data: exit 8" 8
run $H verify --sig "$dir/det.cose" --file "$dir/bin" --aad fw-v2
check "verify detached, other AAD: exit 8" 8
run $H verify --sig "$dir/det.cose" --aad fw-v1
check "verify detached without the data: exit 2" 2 '' 'is detached'
"$PY" -c "
import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[-3] ^= 1; open(sys.argv[2], 'wb').write(b)
" "$dir/c.ES256" "$dir/c.bad"
run $H verify --sig "$dir/c.bad"
check "verify COSE_Sign1 with a flipped signature bit: exit 8" 8
run $H verify --sig "$dir/c.ES256" --key p384
check "verify with another key (--key): exit 8" 8
run $H sign --key dk --message x
check "sign with a secret key: exit 2" 2 '' 'signatures need a private key'
run $H sign --key p256 --alg PS256 --message x
check "sign --alg PS256 with an EC key: exit 2" 2 '' 'does not fit key'
run $H sign --key p256
check "sign without data: exit 2" 2 '' 'what to sign'
on_tty "" "$HSMC" sign --key p256 --message x
if [ "$rc" = 2 ] && grep -q 'refusing to write binary output to a terminal' "$dir/tty"; then
  ok "binary signature to a terminal: refused"; else bad "sign to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi

# ---- wrap / unwrap -------------------------------------------------------------------------------
pkcs11-tool --module "$MODULE" --token-label test --login --pin 1234 --keygen --key-type AES:32 \
  --extractable --label xk --id 99 --usage-decrypt >/dev/null 2>&1
run $H wrap --kek kek --key xk --out "$dir/xk.wrapped"
check "wrap an extractable key (aes-kw)" 0 '' 'aes-kw, 40 bytes'
[ "$(stat -c %a "$dir/xk.wrapped")" = 600 ] && ok "wrapped key file is 0600" || bad "wrapped key mode $(stat -c %a "$dir/xk.wrapped")"
run $H unwrap --kek kek --in "$dir/xk.wrapped" --label xk2 --alg aes256 --purpose data
check "unwrap as a new token key" 0 "^unwrapped aes256 key 'xk2' usage=encrypt, decrypt$"
run $H key show xk2
check "unwrapped key is sensitive, not extractable" 0 '^  extractable: +no$'
run $H encrypt --key xk --message 'wrapped round trip' --out "$dir/xk.cose"
run $H decrypt --in "$dir/xk.cose" --key xk2
check "unwrapped key decrypts what the original encrypted" 0 '^wrapped round trip$'
run $H wrap --kek kek --key xk --mech aes-kwp --out "$dir/xk.kwp"
check "wrap --mech aes-kwp" 0
run $H unwrap --kek kek --in "$dir/xk.kwp" --label xk3 --alg aes256 --mech aes-kwp
check "unwrap --mech aes-kwp" 0
run $H unwrap --kek kek --in "$dir/xk.kwp" --label xk4 --alg aes256
check "unwrap with the wrong mechanism fails" 9 '' 'must be those given to `hsmc wrap`'
run $H wrap --kek rsa --key xk --out "$dir/xk.oaep"
check "wrap with an RSA key (rsa-oaep)" 0 '' 'rsa-oaep'
run $H unwrap --kek rsa --in "$dir/xk.oaep" --label xk5 --alg aes256
check "unwrap with the RSA key" 0
run $H wrap --kek kek --key dk --out "$dir/dk.wrapped"
check "wrap a non-extractable key: refused" 1 '' 'not extractable'
absent "no output file after a refused wrap" "$dir/dk.wrapped"
run $H unwrap --kek kek --in "$dir/xk.wrapped" --label xk2 --alg aes256
check "unwrap to an existing label: exit 10" 10
run $H wrap --kek kek --key xk --mech rsa-oaep
check "wrap --mech rsa-oaep with an AES KEK: exit 2" 2 '' 'does not fit'

# ---- encrypt / decrypt: kinds ---------------------------------------------------------------------
run $H encrypt --key dk --message 'hello, token' --out "$dir/text.cose"
check "encrypt --message (COSE_Encrypt0)" 0
pycheck_file "COSE_Encrypt0: tag 16, A256GCM, kid, 12-byte IV" "$dir/text.cose" "
import cbor2, sys
m = cbor2.loads(open(sys.argv[1], 'rb').read())
assert m.tag == 16 and len(m.value) == 3, m
assert cbor2.loads(m.value[0])[1] == 3, m.value[0]
assert m.value[1][4] == b'dk' and len(m.value[1][5]) == 12, m.value[1]
assert b'hello' not in open(sys.argv[1], 'rb').read()
"
run $H decrypt --in "$dir/text.cose"
check "decrypt text to stdout" 0 '^hello, token$'
printf 'hello, token' > "$dir/text.want"
same "text restored byte for byte" "$dir/out" "$dir/text.want"
run $H encrypt --key dk --file "$dir/bin" --out "$dir/bin.cose"
run $H decrypt --in "$dir/bin.cose" --out "$dir/bin.out"
check "encrypt/decrypt bytes (--file)" 0
same "bytes restored" "$dir/bin" "$dir/bin.out"
[ "$(stat -c %a "$dir/bin.out")" = 600 ] && ok "plaintext file is 0600" || bad "plaintext mode $(stat -c %a "$dir/bin.out")"
printf '{"device": "gw-7", "keys": [1, 2.5e3, true, null], "nested": {"a": "\\u00e9"}}\n' > "$dir/cfg.json"
run $H encrypt --key dk --json "$dir/cfg.json" --out "$dir/json.cose"
run $H decrypt --in "$dir/json.cose" --out "$dir/json.out"
check "encrypt/decrypt JSON file" 0
same "JSON restored" "$dir/cfg.json" "$dir/json.out"
"$PY" -c "import json,sys; json.load(open(sys.argv[1]))" "$dir/json.out" && ok "restored JSON parses" || bad "restored JSON does not parse"
run $H encrypt --key dk --json '[1, {"x": "y"}]' --out "$dir/json2.cose"
run $H decrypt --in "$dir/json2.cose"
check "encrypt --json TEXT" 0 '^\[1, \{"x": "y"\}\]$'
for badjson in '{"a": }' '[1, 2' '{"a" 1}' 'tru' '{"a": 1} x' "{\"a\": \"$(printf '\001')\"}"; do
  run $H encrypt --key dk --json "$badjson"
  check "encrypt --json rejects malformed JSON ($badjson)" 2 '' 'not well-formed JSON'
done
on_tty "" "$HSMC" decrypt --in "$dir/bin.cose"
if [ "$rc" = 2 ] && grep -q 'refusing to write binary output to a terminal' "$dir/tty"; then
  ok "binary plaintext to a terminal: refused"; else bad "decrypt to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi
on_tty "" "$HSMC" decrypt --in "$dir/text.cose"
if [ "$rc" = 0 ] && grep -q 'hello, token' "$dir/tty"; then
  ok "text plaintext to a terminal: written"; else bad "text to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi

# ---- the kind travels as the COSE content type (label 3, protected) ------------------------------
ctcheck "--message envelope: label 3 is text/plain; charset=utf-8" "$dir/text.cose" 'text/plain; charset=utf-8'
ctcheck "--json envelope: label 3 is application/json" "$dir/json.cose" 'application/json'
ctcheck "--file envelope: label 3 is application/octet-stream" "$dir/bin.cose" 'application/octet-stream'
run $H -v decrypt --in "$dir/text.cose"
check "decrypt -v names the kind: text" 0 '' 'kind text \(content type "text/plain; charset=utf-8"'
same "--message envelope to a pipe: the text" "$dir/out" "$dir/text.want"
run $H -v decrypt --in "$dir/json.cose"
check "decrypt -v names the kind: JSON" 0 '' 'kind JSON \(content type "application/json"'
same "--json envelope to a pipe: the JSON" "$dir/out" "$dir/cfg.json"
run $H -v decrypt --in "$dir/bin.cose"
check "decrypt -v names the kind: bytes" 0 '' 'kind bytes \(content type "application/octet-stream"'
same "--file envelope to a pipe: the bytes" "$dir/out" "$dir/bin"
run $H decrypt --in "$dir/json.cose" --json
check "decrypt --json of a JSON envelope" 0
same "decrypt --json: the JSON" "$dir/out" "$dir/cfg.json"
run $H decrypt --in "$dir/text.cose" --json --out "$dir/notjson.out"
check "decrypt --json of a text envelope: exit 1" 1 '' 'holds text .*not JSON'
absent "decrypt --json of text leaves no --out file" "$dir/notjson.out"
on_tty "" "$HSMC" decrypt --in "$dir/json.cose"
if [ "$rc" = 0 ] && grep -q '"device": "gw-7"' "$dir/tty"; then
  ok "JSON plaintext to a terminal: written as text"; else bad "JSON to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi
"$PY" -c "
import sys; b = bytearray(open(sys.argv[1], 'rb').read()); i = b.index(b'text/plain'); b[i] ^= 0x20
open(sys.argv[2], 'wb').write(b)
" "$dir/text.cose" "$dir/ctflip.cose"
run $H decrypt --in "$dir/ctflip.cose" --out "$dir/ctflip.out"
check "changed content type ('Text/plain'): authenticated, exit 9" 9 '' 'HSMC_ERR_DECRYPT'
absent "changed content type leaves no --out file" "$dir/ctflip.out"
run $H encrypt --key dk --file "$dir/msg" --out "$dir/textfile.cose"
ctcheck "--file of a text file is still bytes" "$dir/textfile.cose" 'application/octet-stream'
on_tty "" "$HSMC" decrypt --in "$dir/textfile.cose"
if [ "$rc" = 2 ] && grep -q 'refusing to write binary output to a terminal' "$dir/tty"; then
  ok "bytes (--file) to a terminal: refused even when printable"; else bad "--file bytes to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi
on_tty "" "$HSMC" decrypt --in "$dir/textfile.cose" --force
if [ "$rc" = 0 ] && grep -q 'firmware image' "$dir/tty"; then
  ok "bytes to a terminal with --force"; else bad "--force to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi
run $H encrypt --key dk --message "$(printf 'caf\351')"
check "--message that is not UTF-8: exit 2" 2 '' 'not UTF-8'
printf '{"a": "caf\351"}' > "$dir/latin1.json"
run $H encrypt --key dk --json "$dir/latin1.json"
check "--json that is not UTF-8: exit 2" 2 '' 'not UTF-8'

# ---- AAD, wrong key, tampering, truncation -------------------------------------------------------
run $H encrypt --key dk --message secret --aad device-42 --out "$dir/aad.cose"
run $H decrypt --in "$dir/aad.cose" --aad device-42
check "decrypt with the right --aad" 0 '^secret$'
run $H decrypt --in "$dir/aad.cose" --aad device-43 --out "$dir/aad.out"
check "decrypt with the wrong --aad: exit 9" 9 '' 'HSMC_ERR_DECRYPT'
absent "wrong --aad leaves no --out file" "$dir/aad.out"
run $H decrypt --in "$dir/aad.cose" --out "$dir/aad.out"
check "decrypt without the --aad: exit 9" 9
[ -s "$dir/out" ] && bad "wrong AAD wrote to stdout" || ok "wrong AAD writes nothing to stdout"
run $H decrypt --in "$dir/text.cose" --key xk2
check "decrypt with another key (--key): exit 9" 9
"$PY" -c "
import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[-5] ^= 0x40; open(sys.argv[2], 'wb').write(b)
" "$dir/bin.cose" "$dir/flip.cose"
run $H decrypt --in "$dir/flip.cose" --out "$dir/flip.out"
check "tampered ciphertext: exit 9" 9
absent "tampered ciphertext leaves no --out file" "$dir/flip.out"
head -c 3000 "$dir/bin.cose" > "$dir/cut.cose"
run $H decrypt --in "$dir/cut.cose" --out "$dir/cut.out"
check "truncated envelope: exit 9" 9 '' 'damaged or cut short'
absent "truncated envelope leaves no --out file" "$dir/cut.out"
run $H decrypt --in "$dir/msg"
check "not an envelope: exit 9" 9 '' 'not an envelope'
run $H decrypt --in "$dir/c.ES256"
check "decrypt of a COSE_Sign1: exit 2" 2 '' 'hsmc verify'
run $H decrypt --in "$dir/nonexistent"
check "decrypt of a missing file: exit 2" 2 '' 'cannot open'

# ---- envelopes: recipients ------------------------------------------------------------------------
head -c 32 /dev/urandom > "$dir/shared.key"
$H key import --label shared-kek --alg aes256 --in "$dir/shared.key" --purpose kek >/dev/null
$H key import --label shared-kek --alg aes256 --in "$dir/shared.key" --purpose kek --token other >/dev/null
# Envelopes as hsmc wrote them before label 3 (made here by Python): they open, as bytes.
$H key import --label old-dk --alg aes256 --in "$dir/shared.key" --purpose data >/dev/null
"$PY" - "$dir/shared.key" "$dir/old0.cose" "$dir/oldenv.cose" <<'PYEOF'
import cbor2, os, sys
from cryptography.hazmat.primitives import keywrap
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = open(sys.argv[1], 'rb').read()
enc = lambda obj: cbor2.dumps(obj, canonical=True)
pt = b'old text, no label 3'
prot, iv = enc({1: 3}), os.urandom(12)
ct = AESGCM(key).encrypt(iv, pt, enc(['Encrypt0', prot, b'']))
open(sys.argv[2], 'wb').write(enc(cbor2.CBORTag(16, [prot, {4: b'old-dk', 5: iv}, ct])))
cek, iv = os.urandom(32), os.urandom(12)
ct = AESGCM(cek).encrypt(iv, pt, enc(['Encrypt', prot, b'']))
rcp = [b'', {1: -5, 4: b'shared-kek'}, keywrap.aes_key_wrap(key, cek)]
open(sys.argv[3], 'wb').write(enc(cbor2.CBORTag(96, [prot, {5: iv}, ct, [rcp]])))
PYEOF
printf 'old text, no label 3' > "$dir/old.want"
ctcheck "old COSE_Encrypt0 has no label 3" "$dir/old0.cose" none
for f in old0 oldenv; do
  run $H -v decrypt --in "$dir/$f.cose"
  check "old envelope ($f) without label 3 decrypts as bytes" 0 '' 'kind bytes \(content type none'
  same "old envelope ($f): the bytes" "$dir/out" "$dir/old.want"
done
on_tty "" "$HSMC" decrypt --in "$dir/old0.cose"
if [ "$rc" = 2 ] && grep -q 'refusing to write binary output to a terminal' "$dir/tty"; then
  ok "old envelope to a terminal: bytes, refused"; else bad "old envelope to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi
run $H decrypt --in "$dir/old0.cose" --json
check "old envelope with --json: exit 1 (no content type)" 1 '' 'content type none'
run $H encrypt --recipient kek --recipient shared-kek --file "$dir/bin" --out "$dir/env.cose"
check "encrypt with two recipients" 0
pycheck_file "COSE_Encrypt: tag 96, two A256KW recipients with kids" "$dir/env.cose" "
import cbor2, sys
m = cbor2.loads(open(sys.argv[1], 'rb').read())
assert m.tag == 96 and len(m.value) == 4, m.tag
rs = m.value[3]
assert [r[1][1] for r in rs] == [-5, -5], rs
assert [r[1][4] for r in rs] == [b'kek', b'shared-kek'], rs
"
run $H decrypt --in "$dir/env.cose" --out "$dir/env.out"
check "decrypt on token test (first recipient)" 0
same "envelope restored (token test)" "$dir/bin" "$dir/env.out"
rm -f "$dir/env.out"
run $H decrypt --in "$dir/env.cose" --out "$dir/env.out" --token other
check "decrypt on token other (second recipient only)" 0
same "envelope restored (token other)" "$dir/bin" "$dir/env.out"
run $H encrypt --recipient kek --message only-kek --out "$dir/kek.cose"
run $H decrypt --in "$dir/kek.cose" --token other
check "no key for the recipient on this token: exit 6" 6 '' "select the token that holds it"
run $H encrypt --recipient rsa --message 'to an RSA key' --out "$dir/rsa.cose"
run $H decrypt --in "$dir/rsa.cose"
check "RSA-OAEP recipient round trip" 0 '^to an RSA key$'
pycheck_file "RSA recipient alg is RSA-OAEP (-40)" "$dir/rsa.cose" "
import cbor2, sys
m = cbor2.loads(open(sys.argv[1], 'rb').read())
assert m.value[3][0][1][1] == -40, m.value[3]
"
run $H encrypt --recipient kek --message armored --base64 --out "$dir/b64.txt"
if "$PY" -c "import base64,sys; base64.b64decode(open(sys.argv[1]).read(), validate=False)" "$dir/b64.txt"; then ok "--base64 output is base64"; else bad "--base64 output is not base64"; fi
run $H decrypt --in "$dir/b64.txt"
check "decrypt --base64 input" 0 '^armored$'
run $H encrypt --key dk --recipient kek --message x
check "--key with --recipient: exit 2" 2 '' 'either --key'
run $H encrypt --recipient p256 --message x
check "EC recipient: exit 2" 2 '' 'recipients are AES key-encryption keys or RSA keys'
run $H encrypt --key kek --message x
check "--key with a KEK (no encrypt usage): hint" 1 '' 'goes with --recipient'

# Versioned keys: the base label encrypts with the latest; old envelopes still open.
$H key rotate store --purpose data >/dev/null 2>&1
run $H encrypt --key store --message v1 --out "$dir/v1.cose"
check "encrypt with a base label uses the latest version" 0 '' "using 'store-v0001'"
$H key rotate store --purpose data >/dev/null 2>&1
run $H encrypt --key store --message v2 --out "$dir/v2.cose"
pycheck_file "the envelope names the exact version" "$dir/v2.cose" "
import cbor2, sys
assert cbor2.loads(open(sys.argv[1], 'rb').read()).value[1][4] == b'store-v0002'
"
run $H decrypt --in "$dir/v1.cose"
check "an envelope from before the rotation still opens" 0 '^v1$'

# ---- streams ---------------------------------------------------------------------------------------
head -c $((20 * 1024 * 1024)) /dev/urandom > "$dir/big"
start=$(date +%s.%N)
run $H encrypt --recipient kek --recipient rsa --file "$dir/big" --out "$dir/big.cose"
check "encrypt a 20 MiB file" 0
pycheck_file "20 MiB input became a stream (nil ciphertext, chunk size, chunks follow)" "$dir/big.cose" "
import cbor2, sys, io
f = open(sys.argv[1], 'rb')
d = cbor2.CBORDecoder(f)
h = d.decode()
assert h.tag == 96 and h.value[2] is None, h
prot = cbor2.loads(h.value[0])
assert prot[-65537] == 65536, prot
n = 0
while f.tell() < len(open(sys.argv[1], 'rb').read()):
    d.decode(); n += 1
assert n == 20 * 16 + 1, n
"
run $H decrypt --in "$dir/big.cose" --out "$dir/big.out"
check "decrypt the stream" 0
same "20 MiB restored byte for byte" "$dir/big" "$dir/big.out"
end=$(date +%s.%N)
echo "     (20 MiB encrypt + decrypt: $("$PY" -c "print(round($end - $start, 2))") s)"
rm -f "$dir/big.out"
run $H decrypt --in "$dir/big.cose" --out "$dir/big.out" --token test --key rsa
check "decrypt the stream with the RSA recipient (--key)" 0
same "stream restored via RSA recipient" "$dir/big" "$dir/big.out"
rm -f "$dir/big.out"
# Fixed RAM: the 20 MiB stream must not cost more than a 1-chunk stream
# beyond a few chunk buffers. Measured as a difference of peak RSS, so the
# runtime's own baseline (larger under sanitizers) cancels out.
head -c 100 /dev/urandom > "$dir/tiny"
run $H encrypt --recipient kek --file "$dir/tiny" --stream --out "$dir/tiny.cose"
peak_kib() { { /usr/bin/time -f '%M' "$@" >/dev/null; } 2>&1 | tail -1; }
base=$(peak_kib $H decrypt --in "$dir/tiny.cose" --out "$dir/tiny.out")
mem=$(peak_kib $H decrypt --in "$dir/big.cose" --out "$dir/big.out")
rm -f "$dir/tiny.out"
if [ $((mem - base)) -lt 4096 ]; then
  ok "stream decrypt of 20 MiB peaks $((mem - base)) KiB above a 100-byte stream (< 4 MiB)"
else
  bad "stream decrypt of 20 MiB peaks $((mem - base)) KiB above a 100-byte stream"
fi
head -c $((12 * 1024 * 1024 + 77)) "$dir/big.cose" > "$dir/bigcut.cose"
run $H decrypt --in "$dir/bigcut.cose" --out "$dir/bigcut.out"
check "truncated stream: exit 9" 9 '' 'HSMC_ERR_TRUNCATED'
absent "truncated stream leaves no --out file" "$dir/bigcut.out"
"$PY" -c "
import cbor2, sys, io
data = open(sys.argv[1], 'rb').read()
f = io.BytesIO(data); d = cbor2.CBORDecoder(f)
items = []
start = 0
while f.tell() < len(data):
    d.decode(); items.append(data[start:f.tell()]); start = f.tell()
# Drop the last chunk: a stream that ends on a chunk boundary.
open(sys.argv[3], 'wb').write(b''.join(items[:-1]))
items[3], items[4] = items[4], items[3]
open(sys.argv[2], 'wb').write(b''.join(items))
" "$dir/big.cose" "$dir/swap.cose" "$dir/nolast.cose"
run $H decrypt --in "$dir/swap.cose" --out "$dir/swap.out"
check "reordered chunks: exit 9" 9 '' 'HSMC_ERR_SEQUENCE'
absent "reordered chunks leave no --out file" "$dir/swap.out"
run $H decrypt --in "$dir/nolast.cose" --out "$dir/nolast.out"
check "stream without its last chunk: exit 9" 9 '' 'TRUNCATED'
absent "missing last chunk leaves no --out file" "$dir/nolast.out"
cat "$dir/msg" | $H encrypt --recipient kek --file - --out "$dir/pipe.cose" 2> "$dir/err" && rc=0 || rc=$?
run $H decrypt --in "$dir/pipe.cose"
check "small input from a pipe" 0 '^firmware image'
run $H encrypt --recipient kek --file "$dir/msg" --stream --aad s --out "$dir/small.cose"
run $H decrypt --in "$dir/small.cose" --aad s
check "--stream for a small file" 0 '^firmware image'
ctcheck "stream header of --file: label 3 application/octet-stream" "$dir/small.cose" 'application/octet-stream'
ctcheck "20 MiB stream header: label 3 application/octet-stream" "$dir/big.cose" 'application/octet-stream'
run $H encrypt --recipient kek --message 'streamed text' --stream --out "$dir/stext.cose"
ctcheck "stream of --message: label 3 text/plain" "$dir/stext.cose" 'text/plain; charset=utf-8'
run $H -v decrypt --in "$dir/stext.cose"
check "stream of text decrypts to the text" 0 '^streamed text$' 'stream, kind text'
on_tty "" "$HSMC" decrypt --in "$dir/stext.cose"
if [ "$rc" = 0 ] && grep -q 'streamed text' "$dir/tty"; then
  ok "stream of text to a terminal: written"; else bad "text stream to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi
on_tty "" "$HSMC" decrypt --in "$dir/small.cose" --aad s
if [ "$rc" = 2 ] && grep -q 'refusing to write binary output to a terminal' "$dir/tty"; then
  ok "stream of bytes to a terminal: refused"; else bad "bytes stream to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi
run $H encrypt --recipient kek --json '{"s": [1, 2]}' --stream --out "$dir/sjson.cose"
ctcheck "stream of --json: label 3 application/json" "$dir/sjson.cose" 'application/json'
run $H decrypt --in "$dir/sjson.cose" --json
check "stream of JSON with decrypt --json" 0 '^\{"s": \[1, 2\]\}$'
run $H decrypt --in "$dir/stext.cose" --json --out "$dir/stext.out"
check "stream of text with decrypt --json: exit 1" 1 '' 'not JSON'
absent "stream of text with --json leaves no --out file" "$dir/stext.out"
run $H decrypt --in "$dir/small.cose" --aad t --out "$dir/small.out"
check "stream with the wrong --aad: exit 9" 9
absent "stream with the wrong --aad leaves no --out file" "$dir/small.out"
run $H encrypt --key dk --file "$dir/msg" --stream
check "--stream with --key: exit 2" 2 '' '--stream needs --recipient'

# ---- rewrap: KEK rotation without re-encryption ----------------------------------------------------
# hdrlen FILE: bytes of the first CBOR item (a message, or a stream's header).
hdrlen() {
  "$PY" -c "
import cbor2, sys
f = open(sys.argv[1], 'rb'); cbor2.CBORDecoder(f).decode(); print(f.tell())
" "$1"
}
# jget KEY: a value of the JSON document in $dir/out, as compact JSON.
jget() { "$PY" -c "import json, sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]]))" "$dir/out" "$1"; }
$H key rotate kr --purpose kek >/dev/null 2>&1
head -c 3000 /dev/urandom > "$dir/rw.small"
head -c $((9 * 1024 * 1024 + 12345)) /dev/urandom > "$dir/rw.big"
run $H encrypt --recipient kr --file "$dir/rw.small" --out "$dir/rw.small.cose"
check "rewrap setup: a message to kr-v0001 (base label)" 0 '' "using 'kr-v0001'"
run $H encrypt --recipient kr --file "$dir/rw.big" --out "$dir/rw.big.cose"
check "rewrap setup: a 9 MiB stream to kr-v0001" 0
run env -u HSMC_PIN_FILE HSMC_MODULE=/nonexistent/module.so $H rewrap --list --file "$dir/rw.big.cose"
check "rewrap --list: no token, no PIN; the stream's recipient" 0 '^  kr-v0001  A256KW$' ''
grep -q '^stream' "$dir/out" && ok "rewrap --list names a stream" || bad "rewrap --list: $(head -1 "$dir/out")"
$H key rotate kr --purpose kek >/dev/null 2>&1
cp "$dir/rw.big.cose" "$dir/rw.big.orig"
chmod 640 "$dir/rw.big.cose"
run $H rewrap --recipient kr --file "$dir/rw.small.cose" --out "$dir/rw.small.new" --json
check "rewrap a message to the base label (latest: kr-v0002)" 0 '"kids_after": \[' "using 'kr-v0002'"
if [ "$(jget kids_before)" = '["kr-v0001"]' ] && [ "$(jget kids_after)" = '["kr-v0002"]' ] &&
   [ "$(jget stream)" = false ] && [ "$(jget bytes)" = "$(stat -c %s "$dir/rw.small.new")" ]; then
  ok "rewrap --json: kids_before, kids_after, stream, bytes"; else bad "rewrap --json: $(tr -d '\n ' < "$dir/out")"; fi
run $H rewrap --recipient kr --file "$dir/rw.big.cose" --in-place --json
check "rewrap a 9 MiB stream --in-place" 0 '"stream": true' "chunks were copied unchanged"
h1=$(hdrlen "$dir/rw.big.orig"); h2=$(hdrlen "$dir/rw.big.cose")
if [ "$(jget envelope_bytes_before)" = "$h1" ] && [ "$(jget envelope_bytes_after)" = "$h2" ] &&
   [ "$(jget bytes)" = "$(stat -c %s "$dir/rw.big.cose")" ] && [ "$(jget kids_after)" = '["kr-v0002"]' ]; then
  ok "rewrap --json of the stream: header sizes agree with cbor2 ($h1 -> $h2), bytes = file size"
else bad "stream report: $(tr -d '\n ' < "$dir/out"), cbor2 $h1 -> $h2"; fi
if cmp -s <(tail -c +$((h1 + 1)) "$dir/rw.big.orig") <(tail -c +$((h2 + 1)) "$dir/rw.big.cose"); then
  ok "the stream's chunks after the new header are the old bytes, byte for byte"
else bad "the stream's chunks changed"; fi
[ "$(stat -c %a "$dir/rw.big.cose")" = 640 ] && ok "--in-place keeps the file's mode" || bad "--in-place mode $(stat -c %a "$dir/rw.big.cose")"
compgen -G "$dir/rw.big.cose.hsmc-*" >/dev/null && bad "--in-place left a temporary file" || ok "--in-place leaves no temporary file"
pycheck_file "rewrapped message: ciphertext and headers unchanged, one recipient" "$dir/rw.small.new" "
import cbor2, sys
a = cbor2.loads(open('$dir/rw.small.cose', 'rb').read()).value
b = cbor2.loads(open(sys.argv[1], 'rb').read()).value
assert a[:3] == b[:3], 'body changed'
assert [r[1][4] for r in b[3]] == [b'kr-v0002'] and b[3][0][1][1] == -5, b[3]
"
for f in rw.small.new rw.big.cose; do
  run $H rewrap --list --file "$dir/$f"
  check "rewrap --list shows the new kid ($f)" 0 '^  kr-v0002  A256KW$'
  grep -q 'kr-v0001' "$dir/out" && bad "$f still names kr-v0001" || ok "$f no longer needs kr-v0001"
done
run $H rewrap --list --json --file "$dir/rw.big.cose"
check "rewrap --list --json" 0 '"kid": "kr-v0002"'
$H key delete kr-v0001 --yes >/dev/null
run $H decrypt --in "$dir/rw.small.new" --out "$dir/rw.small.out"
check "decrypt the rewrapped message after kr-v0001 was deleted" 0
same "rewrapped message restored byte for byte" "$dir/rw.small" "$dir/rw.small.out"
run $H decrypt --in "$dir/rw.big.cose" --out "$dir/rw.big.out"
check "decrypt the rewrapped stream after kr-v0001 was deleted" 0
same "rewrapped stream restored byte for byte" "$dir/rw.big" "$dir/rw.big.out"
rm -f "$dir/rw.big.out"
run $H decrypt --in "$dir/rw.small.cose"
check "the message from before the rewrap needs kr-v0001: exit 6" 6 '' "kr-v0001"
# The independent checker: rewrap once more, for kr and a KEK of known bytes as well.
"$PY" -c "import sys; sys.stdout.buffer.write(bytes(range(64, 96)))" > "$dir/esc.key"
$H key import --label rw-escrow --alg aes256 --in "$dir/esc.key" --purpose kek >/dev/null
run $H rewrap -r kr -r rw-escrow --file "$dir/rw.small.new" --out "$dir/rw.small.esc"
check "rewrap for two recipients (unwrapped with kr-v0002)" 0 '' "unwrapped with 'kr-v0002'"
run $H rewrap -r kr -r rw-escrow --file "$dir/rw.big.cose" --out "$dir/rw.big.esc"
check "rewrap the stream for two recipients" 0
kh=$(od -An -tx1 -v "$dir/esc.key" | tr -d ' \n')
cth=$(printf 'application/octet-stream' | od -An -tx1 -v | tr -d ' \n')
want=$(od -An -tx1 -v "$dir/rw.small" | tr -d ' \n')
got=$("$PY" "$COSE_CHECK" dec_kw "$kh" "$dir/rw.small.esc" - rw-escrow "$cth" 2>&1) || true
[ "$got" = "$want" ] && ok "cose_check.py dec_kw opens the rewrapped message with the known KEK" || bad "cose_check dec_kw: ${got:0:200}"
got=$("$PY" "$COSE_CHECK" stream "$kh" "$dir/rw.big.esc" - rw-escrow "$dir/rw.big.py" "$cth" 2>&1) || true
if [ "$got" = "$(sha256sum "$dir/rw.big" | cut -c1-64)" ] && cmp -s "$dir/rw.big" "$dir/rw.big.py"; then
  ok "cose_check.py stream opens the rewrapped stream with the known KEK"; else bad "cose_check stream: ${got:0:200}"; fi
rm -f "$dir/rw.big.py"
# Fixed RAM: rewrapping 20 MiB costs no more than a 100-byte stream.
base=$(peak_kib $H rewrap -r kek -r rsa --file "$dir/tiny.cose" --out "$dir/tiny.rw")
start=$(date +%s.%N)
mem=$(peak_kib $H rewrap -r kek -r rsa --file "$dir/big.cose" --out "$dir/big.rw")
end=$(date +%s.%N)
if [ $((mem - base)) -lt 2048 ]; then
  ok "rewrap of a 20 MiB stream peaks $((mem - base)) KiB above a 100-byte stream (< 2 MiB)"
else bad "rewrap of a 20 MiB stream peaks $((mem - base)) KiB above a 100-byte stream"; fi
echo "     (20 MiB stream rewrap: $("$PY" -c "print(round($end - $start, 2))") s)"
run $H decrypt --in "$dir/big.rw" --out "$dir/big.out" --key rsa
check "the rewrapped 20 MiB stream decrypts (RSA recipient)" 0
same "rewrapped 20 MiB stream restored" "$dir/big" "$dir/big.out"
rm -f "$dir/big.out" "$dir/big.rw"
# Other inputs: stdin, base64.
run $H rewrap -r kr --file - --out "$dir/rw.stdin.cose" < /dev/null
check "rewrap of empty stdin: exit 2" 2 '' 'not an envelope'
$H rewrap -r kr < "$dir/rw.small.new" > "$dir/rw.stdin.cose" 2> "$dir/err" && rc=0 || rc=$?
check "rewrap stdin to stdout" 0
run $H decrypt --in "$dir/rw.stdin.cose" --out "$dir/rw.small.out"
same "rewrap stdin to stdout: decrypts" "$dir/rw.small" "$dir/rw.small.out"
run $H rewrap -r kek -r shared-kek --file "$dir/b64.txt" --out "$dir/b64.rw"
check "rewrap of --base64 input" 0
if "$PY" -c "import base64,sys; base64.b64decode(open(sys.argv[1]).read(), validate=False)" "$dir/b64.rw"; then ok "base64 input stays base64"; else bad "rewrap of base64 is not base64"; fi
run $H decrypt --in "$dir/b64.rw" --token other
check "rewrapped base64 envelope opens with the new recipient only (token other)" 0 '^armored$'
# Refusals.
$H key gen --label rw-gone --purpose kek >/dev/null
run $H encrypt --recipient rw-gone --file "$dir/rw.small" --out "$dir/rw.gone.cose"
$H key delete rw-gone --yes >/dev/null
run $H rewrap -r kr --file "$dir/rw.gone.cose" --out "$dir/rw.gone.new"
check "rewrap, old KEK not on the token: exit 6, the hint names the kid" 6 '' "hint: .*'rw-gone' \(A256KW\)"
absent "unknown old KEK: no output file" "$dir/rw.gone.new"
run $H rewrap -r kr --file "$dir/text.cose" --out "$dir/rw.e0.new"
check "rewrap of a COSE_Encrypt0 (encrypt --key): exit 2 with a hint" 2 '' 'made with --key: a data key has no recipients; decrypt and encrypt again'
absent "COSE_Encrypt0: no output file" "$dir/rw.e0.new"
run $H rewrap --list --file "$dir/text.cose"
check "rewrap --list of a COSE_Encrypt0: exit 2" 2 '' 'made with --key'
run $H rewrap -r kr --file "$dir/c.ES256" --out "$dir/rw.s1.new"
check "rewrap of a COSE_Sign1: exit 2" 2 '' 'COSE_Sign1'
"$PY" -c "
import sys; b = bytearray(open(sys.argv[1], 'rb').read()); b[-3] ^= 0x40; open(sys.argv[2], 'wb').write(b)
" "$dir/rw.small.new" "$dir/rw.tamper.cose"
run $H rewrap -r kr --file "$dir/rw.tamper.cose" --out "$dir/rw.tamper.new"
check "rewrap, tampered wrapped key: exit 9" 9 '' 'HSMC_ERR_DECRYPT'
absent "tampered wrapped key: no output file" "$dir/rw.tamper.new"
h=$(hdrlen "$dir/rw.big.cose")
cp "$dir/rw.big.cose" "$dir/rw.big.tamper"
"$PY" -c "
import sys; f = open(sys.argv[1], 'r+b'); n = int(sys.argv[2]); f.seek(n - 3); b = f.read(1); f.seek(n - 3); f.write(bytes([b[0] ^ 0x40]))
" "$dir/rw.big.tamper" "$h"
cp "$dir/rw.big.tamper" "$dir/rw.big.tamper.orig"
run $H rewrap -r kr --file "$dir/rw.big.tamper" --in-place
check "rewrap --in-place, tampered stream header: exit 9" 9 '' 'HSMC_ERR_DECRYPT'
same "a refused --in-place leaves the file as it was" "$dir/rw.big.tamper" "$dir/rw.big.tamper.orig"
compgen -G "$dir/rw.big.tamper.hsmc-*" >/dev/null && bad "refused --in-place left a temporary file" || ok "refused --in-place leaves no temporary file"
head -c "$h" "$dir/rw.big.cose" > "$dir/rw.hdronly"
run $H rewrap -r kr --file "$dir/rw.hdronly" --out "$dir/rw.hdronly.new"
check "rewrap of a stream header without chunks: exit 9" 9 '' 'no chunks'
absent "header without chunks: no output file" "$dir/rw.hdronly.new"
mkfifo "$dir/rw.fifo"
run timeout 10 $H rewrap -r kr --file "$dir/rw.fifo" --in-place
check "rewrap --in-place on a FIFO: refused (exit 2)" 2 '' 'is a FIFO; only a regular file'
[ -p "$dir/rw.fifo" ] && ok "the FIFO is still a FIFO" || bad "the FIFO was replaced"
ln -s "$dir/rw.small.new" "$dir/rw.link"
run $H rewrap -r kr --file "$dir/rw.link" --in-place
check "rewrap --in-place on a symbolic link: refused (exit 2)" 2 '' 'symbolic link'
run $H rewrap -r kr --in-place
check "rewrap --in-place without --file: exit 2" 2 '' 'give a file, not stdin'
run $H rewrap --file "$dir/rw.small.new"
check "rewrap without --recipient: exit 2" 2 '' 'rewrap --list'
run $H rewrap -r kr --file "$dir/rw.small.new" --json
check "rewrap --json to stdout: exit 2" 2 '' 'give --out FILE or --in-place'
run $H rewrap -r kr --file "$dir/rw.small.new" --out "$dir/x" --in-place
check "rewrap --out with --in-place: exit 2" 2 '' 'not both'
run $H rewrap -r p256 --file "$dir/rw.small.new" --out "$dir/rw.ec.new"
check "rewrap for an EC key: exit 2" 2 '' 'recipients are AES key-encryption keys or RSA keys'
absent "EC recipient: no output file" "$dir/rw.ec.new"
on_tty "" "$HSMC" rewrap -r kr --file "$dir/rw.small.new"
if [ "$rc" = 2 ] && grep -q 'refusing to write binary output to a terminal' "$dir/tty"; then
  ok "rewrap to a terminal: refused"; else bad "rewrap to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi

# ---- help --------------------------------------------------------------------------------------------
for verb in sign verify wrap unwrap encrypt decrypt rewrap; do
  run $H "$verb" --help
  check "hsmc $verb --help" 0 "^Usage: hsmc $verb "
  run $H help "$verb"
  check "hsmc help $verb" 0 "^Usage: hsmc $verb "
done
run $H --help
check "hsmc --help lists encrypt" 0 '^  encrypt '
check "hsmc --help lists rewrap" 0 '^  rewrap '
check "hsmc --help: exit code 8" 0 '^  8  the signature does not verify'
check "hsmc --help: exit code 9" 0 '^  9  decryption failed'
run $H encrpyt
check "typo of a top-level command: suggestion" 2 '' "did you mean 'encrypt'"

summary
