#!/usr/bin/env bash
# test_cli_key.sh: `hsmc key ...` against fresh SoftHSM2 tokens, checked with
# tools we did not write (openssl, pkcs11-tool, Python's json).
#   HSMC_CLI             the hsmc binary (set by ctest)
#   HSMC_TEST_BINARY_DIR build directory (fallback: $HSMC_TEST_BINARY_DIR/cli/hsmc)
#   HSMC_TEST_MODULE     SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)
set -euo pipefail

# run, check, ok/bad, SoftHSM2 set-up: shared by the test scripts.
. "$(dirname "$0")/cli_lib.sh"
find_hsmc
need_tools softhsm2-util pkcs11-tool openssl "$PY"
new_dir cli-key
test_tokens test
P11="pkcs11-tool --module $MODULE --token-label test"
# Every hsmc call below works on token "test" with the PIN from the file.
K() { "$HSMC" key "$@" --token test --pin-file "$dir/pin"; }
on_bad() { show_run out err; }
# p11_has CLASS LABEL: pkcs11-tool -O lists an object of that class and label.
p11_objects() { $P11 --login --pin 1234 -O 2>/dev/null > "$dir/p11" || true; }
p11_has() {
  awk -v cls="$1" -v lbl="$2" '
    /Object;/ { c = $0 }
    /^ *label: / { sub(/^ *label: */, ""); if (index(c, cls) && $0 == lbl) found = 1 }
    END { exit !found }' "$dir/p11"
}

# ---- key gen -------------------------------------------------------------------------
run K gen --label sig --purpose signing
check "gen --purpose signing" 0 "^generated p256 key 'sig' id=[0-9a-f]{32} usage=sign$"
run K gen --label root --purpose ca_root
check "gen --purpose ca_root: p384" 0 "^generated p384 key 'root'"
run K gen --label kek --purpose kek
check "gen --purpose kek: aes256 wrap+unwrap" 0 "^generated aes256 key 'kek' .*usage=wrap, unwrap$"
run K gen --label dk --purpose data --json
pycheck "gen --purpose data --json" "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['label'] == 'dk' and d['alg'] == 'aes256' and d['class'] == 'secret-key', d
assert d['usage'] == ['encrypt', 'decrypt'], d
assert d['has_public'] is False, d
"
run K gen --label r2 --alg rsa2048 --usage sign,decrypt --id 0a:0b
check "gen --alg rsa2048 --usage sign,decrypt --id" 0 "^generated rsa2048 key 'r2' id=0a0b usage=sign, decrypt$"
run K gen --label a128 --alg aes128
check "gen --alg aes128: default usage encrypt,decrypt" 0 "usage=encrypt, decrypt$"
run K gen --label ed --alg ed25519
check "gen --alg ed25519" 0 "^generated ed25519 key 'ed'"
run K gen --label k1 --alg secp256k1 --usage sign,derive
check "gen --alg secp256k1 --usage sign,derive" 0 "usage=sign, derive$"

run K gen --label sig --purpose signing
check "gen: duplicate label: exit 10" 10 '' 'already exists'
check "gen: duplicate label: hint" 10 '' 'hint: .*key delete'
run K gen --label x --alg bogus
check "gen: unknown alg: exit 2, list" 2 '' 'hint: one of aes128, aes192'
run K gen --label x --alg p256 --usage sign,fly
check "gen: unknown usage: exit 2" 2 '' "unknown usage 'fly'"
run K gen --label x --alg p256 --usage encrypt
check "gen: usage not for the alg: exit 2" 2 '' "not for a p256 private key"
run K gen --label x --purpose nope
check "gen: unknown purpose: exit 2" 2 '' 'unknown purpose'
run K gen --label x --purpose kek --alg aes256
check "gen: --purpose with --alg: exit 2" 2 '' 'either --purpose or --alg'
run K gen --purpose kek
check "gen: no label: exit 2" 2 '' 'give --label'
run K gen --label x --alg aes256 --id zz
check "gen: bad --id: exit 2" 2 '' '--id: expected'
run "$HSMC" key gen --label x --purpose kek --token test
check "gen: no PIN and no terminal: exit 5" 5 '' 'needs the user PIN'

p11_objects
for o in "Private Key:sig" "Public Key:sig" "Secret Key:kek" "Secret Key:dk" "Private Key:r2" \
         "Public Key:r2" "Private Key:ed" "Private Key:root"; do
  if p11_has "${o%%:*}" "${o#*:}"; then ok "pkcs11-tool -O lists ${o%%:*} '${o#*:}'"; else bad "pkcs11-tool -O lacks ${o%%:*} '${o#*:}'"; fi
done
if awk '/label: *r2$/ {f=1} f && /ID:/ {print; exit}' "$dir/p11" | grep -q '0a0b'; then ok "pkcs11-tool sees --id 0a0b"; else bad "pkcs11-tool does not see id 0a0b"; fi

# ---- key list / show -------------------------------------------------------------------------
run K list
check "list" 0 '^8 keys$'
check "list: private key line" 0 '^private-key +p256 +256  label="sig" id=[0-9a-f]+ usage=sign public=yes$'
check "list: secret key line" 0 '^secret-key +aes256 +256  label="kek" id=[0-9a-f]+ usage=wrap, unwrap$'
check "list: rsa size" 0 'rsa2048 +2048  label="r2"'
if grep -q 'public-key' "$dir/out"; then bad "list shows public keys as keys"; else ok "list: public halves are not separate keys"; fi
run K list --json
pycheck "list --json" "
import json, sys
d = json.load(open(sys.argv[1]))
ks = {k['label']: k for k in d['keys']}
assert d['count'] == 8 == len(ks), d['count']
assert ks['sig']['alg'] == 'p256' and ks['sig']['bits'] == 256 and ks['sig']['has_public'] is True
assert ks['r2']['id'] == '0a0b' and ks['r2']['usage'] == ['sign', 'decrypt'] and ks['r2']['bits'] == 2048
assert ks['kek']['class'] == 'secret-key' and ks['kek']['has_public'] is False
assert all(k['sensitive'] and not k['extractable'] for k in ks.values())
"
run "$HSMC" key list --token test
check "list without a PIN: exit 5" 5 '' 'needs the user PIN'

run K show sig
check "show: class" 0 '^  class: +private-key$'
check "show: local" 0 '^  local \(made in token\): +yes$'
check "show: always sensitive" 0 '^  always sensitive: +yes$'
check "show: never extractable" 0 '^  never extractable: +yes$'
check "show: extractable no" 0 '^  extractable: +no$'
check "show: public key" 0 "^  public key: +'sig', usage verify$"
check "show: mechanism" 0 '^  generated with: +CKM_EC_KEY_PAIR_GEN$'
fp=$(sed -n 's/^  SPKI SHA-256: *\([0-9a-f]\{64\}\)$/\1/p' "$dir/out")
K export-pub sig --format der --out "$dir/sig.der" 2>/dev/null
# --out to a FIFO (as to /dev/null or /dev/stdout) writes in place: the
# temporary-file-and-rename used for regular files must not replace the node.
mkfifo "$dir/fifo"
cat "$dir/fifo" > "$dir/fifo.out" &
reader=$!
K export-pub sig --format der --out "$dir/fifo" 2>/dev/null || true
wait "$reader" || true
if [ -p "$dir/fifo" ] && cmp -s "$dir/fifo.out" "$dir/sig.der"; then
  ok "export-pub --out FIFO: written in place, the FIFO is still a FIFO"
else
  bad "export-pub --out FIFO replaced the FIFO or wrote the wrong bytes"
fi
want_fp=$(openssl pkey -pubin -inform der -in "$dir/sig.der" -outform der | sha256sum | cut -c1-64)
[ -n "$fp" ] && [ "$fp" = "$want_fp" ] && ok "show: SPKI SHA-256 = sha256 of openssl's DER" || bad "show: fingerprint '$fp' != '$want_fp'"
run K show kek --json
pycheck "show --json (secret key)" "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['alg'] == 'aes256' and d['bits'] == 256 and d['usage'] == ['wrap', 'unwrap'], d
assert d['local'] is True and d['always_sensitive'] is True and d['never_extractable'] is True, d
assert d['public'] is None and d['spki_sha256'] is None, d
assert d['key_gen_mechanism'] == 'CKM_AES_KEY_GEN', d
"
run K show nosuchkey
check "show: missing key: exit 6" 6 '' "no key labelled 'nosuchkey'"
run K show
check "show: no label: exit 2" 2 '' 'which key'

# ---- export-pub ---------------------------------------------------------------------------------
run K export-pub sig
check "export-pub: PEM on stdout" 0 '^-----BEGIN PUBLIC KEY-----$'
if openssl pkey -pubin -in "$dir/out" -noout -text 2>/dev/null | grep -q 'ASN1 OID: prime256v1'; then
  ok "export-pub: openssl pkey -pubin parses it (P-256)"; else bad "export-pub: openssl cannot parse the PEM"; fi
cp "$dir/out" "$dir/sig.pem"
for k in r2 ed root k1; do
  K export-pub "$k" --out "$dir/$k.pem" 2>/dev/null
  if openssl pkey -pubin -in "$dir/$k.pem" -noout 2>/dev/null; then ok "export-pub $k --out: openssl parses it"; else bad "export-pub $k: openssl cannot parse it"; fi
done
if openssl pkey -pubin -inform der -in "$dir/sig.der" -outform pem | cmp -s - "$dir/sig.pem"; then
  ok "export-pub --format der = PEM body"; else bad "export-pub der and pem differ"; fi
run K export-pub kek
check "export-pub of a secret key: exit 2" 2 '' 'secret .* key: it has no public key'
run K export-pub sig --format jwk
check "export-pub --format jwk: exit 2" 2 '' 'expected pem or der'
run K export-pub nosuch
check "export-pub: missing key: exit 6" 6
on_tty "" "$HSMC" key export-pub sig --format der --token test --pin-file "$dir/pin"
if [ "$rc" = 2 ] && grep -q 'refusing to write binary output to a terminal' "$dir/tty"; then
  ok "export-pub der to a terminal: refused"; else bad "export-pub der to a terminal: exit $rc, $(head -2 "$dir/tty")"; fi

# ---- import -----------------------------------------------------------------------------------------
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ec.pem" 2>/dev/null
openssl ecparam -name secp384r1 -genkey -noout -out "$dir/ec384.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/rsa.pem" 2>/dev/null
openssl pkey -in "$dir/rsa.pem" -outform der -out "$dir/rsa.der"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass pass:x -out "$dir/enc.pem" 2>/dev/null
head -c 32 /dev/urandom > "$dir/aes.bin"
aeshex=$(od -An -tx1 "$dir/aes.bin" | tr -d ' \n')

run K import --label imp-ec --alg p256 --in "$dir/ec.pem"
check "import: PKCS#8 PEM P-256" 0 "^imported p256 key 'imp-ec'"
run K import --label imp-ec384 --alg p384 --in "$dir/ec384.pem"
check "import: SEC1 PEM P-384 (openssl ecparam)" 0 "^imported p384 key 'imp-ec384'"
run K import --label imp-rsa --alg rsa2048 --in "$dir/rsa.der" --usage sign,decrypt
check "import: RSA DER" 0 "^imported rsa2048 key 'imp-rsa' .*usage=sign, decrypt$"
run K import --label imp-aes --alg aes256 --in "$dir/aes.bin" --purpose data
check "import: AES raw with --purpose data" 0 "^imported aes256 key 'imp-aes' .*usage=encrypt, decrypt$"
if grep -qi "$aeshex" "$dir/out" "$dir/err"; then bad "import echoed the AES key bytes"; else ok "import: key bytes never printed"; fi
for k in ec ec384; do
  K export-pub imp-$k > "$dir/got.pem" 2>/dev/null
  openssl pkey -in "$dir/$k.pem" -pubout > "$dir/want.pem" 2>/dev/null
  if cmp -s "$dir/got.pem" "$dir/want.pem"; then ok "import $k: export-pub = openssl pkey -pubout"; else bad "import $k: public keys differ"; fi
done
K export-pub imp-rsa > "$dir/got.pem" 2>/dev/null
openssl pkey -inform der -in "$dir/rsa.der" -pubout > "$dir/want.pem"
if cmp -s "$dir/got.pem" "$dir/want.pem"; then ok "import rsa: export-pub = openssl pkey -pubout"; else bad "import rsa: public keys differ"; fi
run K show imp-ec
check "import: show says not local" 0 '^  local \(made in token\): +no$'
check "import: still sensitive" 0 '^  sensitive: +yes$'
check "import: not extractable" 0 '^  extractable: +no$'
run K import --label imp-enc --alg p256 --in "$dir/enc.pem"
check "import: encrypted PEM refused: exit 2" 2 '' 'is encrypted'
check "import: encrypted PEM: hint" 2 '' 'hint: decrypt it to a pipe'
openssl pkey -in "$dir/enc.pem" -passin pass:x 2>/dev/null | K import --label imp-pipe --alg p256 --in - > "$dir/out" 2> "$dir/err" && rc=0 || rc=$?
check "import: decrypted key from a pipe (--in -)" 0 "^imported p256 key 'imp-pipe'"
run K import --label imp-bad --alg p384 --in "$dir/ec.pem"
check "import: --alg does not match the key: exit 2" 2 '' 'holds a p256 key'
run K import --label imp-bad --alg aes128 --in "$dir/aes.bin"
check "import: AES length mismatch: exit 2" 2 '' 'aes128 needs 16 key bytes'
run K import --label imp-bad --alg p256 --in "$dir/sig.pem"
check "import: a public key file: exit 2" 2 '' "holds 'PUBLIC KEY', not a private key"
run K import --label imp-ec --alg p256 --in "$dir/ec.pem"
check "import: duplicate label: exit 10" 10 '' 'already exists'
run K import --label imp-bad --alg p256 --in "$dir/nonexistent.pem"
check "import: missing file: exit 2" 2 '' 'cannot open'
run K import --label imp-bad --alg p256 --in "$dir/ec.pem" --format raw
check "import: --format raw for EC: exit 2" 2 '' 'raw is for AES'

# ---- rotate / plan --------------------------------------------------------------------------------------
run K plan data
check "plan with no versions" 0 '^Rotation would create: data-v0001$'
run K rotate data --purpose data
check "rotate: prints the new label" 0 '^data-v0001$'
run K rotate data --purpose data
check "rotate again: v0002" 0 '^data-v0002$'
check "rotate: note on stderr" 0 '' 'older versions stay'
before=$(K list 2>/dev/null | tail -1)
run K plan data
check "plan: v0001 stays" 0 '^  data-v0001  stays for decryption'
check "plan: v0002 latest" 0 '^  data-v0002  latest; stays'
check "plan: next label" 0 '^Rotation would create: data-v0003$'
check "plan: changes nothing" 0 '^Nothing was changed\.$'
after=$(K list 2>/dev/null | tail -1)
[ "$before" = "$after" ] && ok "plan: key count unchanged ($after)" || bad "plan changed the key count: $before -> $after"
run K plan data --json
pycheck "plan --json" "
import json, sys
d = json.load(open(sys.argv[1]))
assert [v['label'] for v in d['versions']] == ['data-v0001', 'data-v0002'], d
assert d['versions'][1]['latest'] and not d['versions'][0]['latest'], d
assert d['next_label'] == 'data-v0003' and d['next_version'] == 3 and d['changed'] is False, d
"
run K list
check "list: version and base" 0 'label="data-v0002" .* version=2 of "data"'
run K show data
check "show BASE: latest version" 0 "^Key 'data-v0002'$" "latest version of 'data'"
run K rotate fw --alg p384 --usage sign --json
pycheck "rotate --json" "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['label'] == 'fw-v0001' and d['alg'] == 'p384' and d['version'] == 1, d
"
run K rotate data
check "rotate without --purpose/--alg: exit 2" 2 '' 'give --purpose'
run K plan
check "plan without BASE: exit 2" 2 '' 'which key'

# ---- delete -------------------------------------------------------------------------------------------
run K delete sig
check "delete without --yes, no terminal: exit 2" 2 '' 'stdin is not a terminal'
run K show sig
check "delete refused: key still there" 0 "^Key 'sig'$"
run K delete sig --yes
check "delete --yes" 0 "^deleted key 'sig'$"
p11_objects
if p11_has "Private Key" sig || p11_has "Public Key" sig; then bad "delete: pkcs11-tool still lists 'sig'"; else ok "delete: both halves gone (pkcs11-tool -O)"; fi
run K delete sig --yes
check "delete missing key: exit 6" 6
run K delete data --yes
check "delete BASE does not pick a version: exit 6" 6
run K delete data-v0001 -y
check "delete -y a version" 0 "^deleted key 'data-v0001'$"
run K plan data
check "plan after deleting v0001" 0 '^Rotation would create: data-v0003$'
# On a terminal hsmc asks; answering "n" keeps the key, "y" deletes it.
on_tty n "$HSMC" key delete dk --token test --pin-file "$dir/pin"
if [ "$rc" = 1 ] && grep -q 'Delete aes256 key .dk.' "$dir/tty" && K show dk >/dev/null 2>&1; then
  ok "delete on a terminal: asks, 'n' keeps the key"; else bad "delete on a terminal, 'n': exit $rc, $(head -3 "$dir/tty")"; fi
on_tty y "$HSMC" key delete dk --token test --pin-file "$dir/pin"
if [ "$rc" = 0 ] && ! K show dk >/dev/null 2>&1; then
  ok "delete on a terminal: 'y' deletes"; else bad "delete on a terminal, 'y': exit $rc, $(head -3 "$dir/tty")"; fi

# ---- delete --orphans: public keys a cut-short pair generation left alone ----------------------
run K delete --orphans nosuch --yes
check "delete --orphans: none found, exit 0" 0 "^none found: no public key labelled 'nosuch' lacks its private key$"
run K delete --orphans nosuch
check "delete --orphans without --yes, no terminal: exit 2" 2 '' 'stdin is not a terminal'
# a pair made by pkcs11-tool whose private half is then deleted, as a killed generation leaves it
$P11 --login --pin 1234 --keypairgen --key-type EC:prime256v1 --label lone --id 0badc0de >/dev/null 2>&1
$P11 --login --pin 1234 --delete-object --type privkey --label lone >/dev/null 2>&1
p11_objects
if p11_has "Public Key" lone && ! p11_has "Private Key" lone; then ok "setup: a lone public key 'lone'"; else bad "setup: lone public key"; fi
run K gen --label lone --purpose signing
check "gen on a label held by a lone public key: exit 10" 10 '' 'already exists'
run K delete --orphans lone --yes
check "delete --orphans: one removed" 0 "^removed 1 public key\(s\) labelled 'lone' that had no private key$"
p11_objects
if grep -q 'label: *lone$' "$dir/p11"; then bad "delete --orphans: pkcs11-tool still lists an object 'lone'"; else ok "delete --orphans: pkcs11-tool lists nothing labelled 'lone'"; fi
run K gen --label lone --purpose signing
check "gen after delete --orphans" 0 "^generated p256 key 'lone'"
# a complete pair is untouched
run K delete --orphans lone -y
check "delete --orphans on a complete pair: none found" 0 '^none found:'
run K show lone
check "delete --orphans: the pair stays" 0 "^  public key: +'lone', usage verify$"
on_tty n "$HSMC" key delete --orphans lone --token test --pin-file "$dir/pin"
if [ "$rc" = 1 ] && grep -q "Delete the public keys labelled 'lone' that have no private key" "$dir/tty"; then
  ok "delete --orphans on a terminal: asks first"; else bad "delete --orphans on a terminal: exit $rc, $(head -3 "$dir/tty")"; fi

# ---- help --------------------------------------------------------------------------------------------------
for verb in gen list show delete rotate plan import export-pub; do
  run "$HSMC" key "$verb" --help
  check "key $verb --help" 0 "^Usage: hsmc key $verb"
done
run "$HSMC" key delete --help
check "key delete --help: --orphans" 0 '^  +--orphans +only public keys of LABEL whose private key is gone$'
check "key delete --help: --orphans example" 0 'hsmc key delete --orphans device-key --yes'

run "$HSMC" key --help
check "key --help" 0 '^Usage: hsmc key COMMAND'
run "$HSMC" --help
check "hsmc --help lists key gen" 0 '^  key gen '
check "hsmc --help: exit code 10" 0 '^ 10  a key or object with that label already exists'

summary
