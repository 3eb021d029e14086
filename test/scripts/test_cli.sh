#!/usr/bin/env bash
# test_cli.sh: the hsmc command against fresh SoftHSM2 tokens, checked with
# tools we did not write (softhsm2-util, pkcs11-tool, Python's json).
#   HSMC_CLI             the hsmc binary (set by ctest)
#   HSMC_TEST_BINARY_DIR build directory (fallback: $HSMC_TEST_BINARY_DIR/cli/hsmc)
#   HSMC_TEST_MODULE     SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)
set -euo pipefail

# run, check, ok/bad, SoftHSM2 set-up: shared by the test scripts.
. "$(dirname "$0")/cli_lib.sh"
find_hsmc
need_tools softhsm2-util pkcs11-tool "$PY"
new_dir cli
test_tokens test other
pin_file "$dir/badpin" 9999
: > "$dir/emptypin"
chmod 600 "$dir/emptypin"
P11="pkcs11-tool --module $MODULE"
on_bad() { show_run out err; }
# never_pin NAME: neither output names the PIN.
never_pin() {
  if grep -qw 1234 "$dir/out" "$dir/err"; then bad "$1: the PIN appears in the output"; else ok "$1: no PIN in the output"; fi
}

# ---- token list -------------------------------------------------------------------
run "$HSMC" token list
check "token list" 0 '^Module: Implementation of PKCS11 by SoftHSM, version 2\.6, Cryptoki 2\.40$'
for label in test other; do
  if grep -qE "^  label: +$label\$" "$dir/out"; then ok "token list shows label $label"; else bad "token list lacks label $label"; fi
done
serials=$(softhsm2-util --show-slots | sed -n 's/^ *Serial number: *\([0-9a-f]\{1,\}\) *$/\1/p')
nserial=0
for s in $serials; do
  nserial=$((nserial + 1))
  if grep -qE "^  serial: +$s\$" "$dir/out"; then ok "token list shows serial $s (softhsm2-util)"; else bad "token list lacks serial $s"; fi
done
[ "$nserial" = 2 ] && ok "softhsm2-util reports 2 serials" || bad "softhsm2-util reported $nserial serials"
want_slots=$($P11 --list-slots 2>/dev/null | grep -c '^Slot ' || true)
got_slots=$(grep -c '^Slot ' "$dir/out" || true)
[ "$want_slots" = "$got_slots" ] && ok "token list: $got_slots slots, as pkcs11-tool --list-slots" ||
  bad "token list: $got_slots slots, pkcs11-tool lists $want_slots"
$P11 --list-token-slots 2>/dev/null | sed -n 's/^ *serial num *: *\([0-9a-f]\{1,\}\)$/\1/p' | sort > "$dir/p11serials"
run "$HSMC" token list --json
pycheck "token list --json: labels and serials as pkcs11-tool" "
import json, sys
d = json.load(open(sys.argv[1]))
want = sorted(open('$dir/p11serials').read().split())
toks = [s['token'] for s in d['slots'] if s['token'] and s['token']['initialized']]
assert sorted(t['serial'] for t in toks) == want, (toks, want)
assert sorted(t['label'] for t in toks) == ['other', 'test'], toks
assert d['module']['cryptoki_version'] == '2.40', d['module']
assert 'login required' in toks[0]['flags'], toks[0]
"

# ---- token info -----------------------------------------------------------------------
test_serial=$($P11 --list-token-slots 2>/dev/null | awk '/token label *: test$/ {f=1} f && /serial num/ {print $NF; exit}')
run "$HSMC" token info --token test
check "token info" 0 "^  serial: +$test_serial\$"
check "token info: flags in words" 0 '^  flags: +.*login required.*user PIN initialized'
check "token info: unavailable counts" 0 '^  total public memory: +unavailable$'
check "token info: PIN length" 0 '^  max PIN length: +255$'
run "$HSMC" token info --token "pkcs11:token=test;serial=$test_serial" --json
pycheck "token info --json by URI with serial" "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['label'] == 'test' and d['serial'] == '$test_serial', d
assert d['min_pin_len'] == 4 and d['max_sessions'] == 'unlimited', d
assert d['total_private_memory'] == 'unavailable', d
"

# ---- token mechanisms ------------------------------------------------------------------
run "$HSMC" token mechanisms --token test
check "token mechanisms" 0 '^  CKM_ECDSA ' 
check "token mechanisms: CKM_AES_GCM" 0 '^  CKM_AES_GCM +keysize 16\.\.32 +encrypt, decrypt$'
want_mechs=$($P11 --token-label test -M 2>/dev/null | grep -c '^  ' || true)
got_mechs=$(sed -n 's/^\([0-9]\{1,\}\) mechanisms$/\1/p' "$dir/out")
[ -n "$got_mechs" ] && [ "$want_mechs" = "$got_mechs" ] && ok "token mechanisms: $got_mechs, as pkcs11-tool -M" ||
  bad "token mechanisms: '$got_mechs', pkcs11-tool -M lists $want_mechs"
lines=$(grep -c '^  ' "$dir/out" || true)
[ "$lines" = "$want_mechs" ] && ok "token mechanisms: one line each" || bad "token mechanisms: $lines lines"
$P11 --token-label test -M 2>/dev/null | grep '^  ' > "$dir/p11mechs"
run "$HSMC" token mechanisms --token test --json
pycheck "token mechanisms --json: flags as pkcs11-tool -M" "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['count'] == len(d['mechanisms']) == $want_mechs
# pkcs11-tool names: CKM_AES_CBC_PAD -> AES-CBC-PAD; compare the flag words of those it names that way.
words = ('encrypt', 'decrypt', 'digest', 'sign', 'verify', 'wrap', 'unwrap', 'derive')
p11 = {}
for line in open('$dir/p11mechs'):
    parts = [p.strip() for p in line.strip().split(',')]
    p11[parts[0]] = set(p for p in parts if p in words)
seen = 0
for m in d['mechanisms']:
    key = m['name'][4:].replace('_', '-')
    if key in p11:
        seen += 1
        mine = set(f for f in m['flags'] if f in words)
        assert mine == p11[key], (m['name'], mine, p11[key])
assert seen > 30, seen
"

# ---- objects made by pkcs11-tool --------------------------------------------------------
$P11 --token-label test --login --pin 1234 --keypairgen --key-type EC:prime256v1 --label dev --id 01 >/dev/null 2>&1
$P11 --token-label test --login --pin 1234 --keygen --key-type AES:32 --label aeskey --id 02 >/dev/null 2>&1
# Labels JSON and the terminal must escape: quote, backslash, UTF-8, a tab.
$P11 --token-label other --login --pin 1234 --keygen --key-type AES:16 --label "q\"b\\ü	t" --id a0b1 >/dev/null 2>&1

run "$HSMC" object list --token test --pin-file "$dir/pin"
check "object list: private key" 0 '^private-key +EC +label="dev" id=01 usage=.*sign.*sensitive'
check "object list: public key" 0 '^public-key +EC +label="dev" id=01 usage=.*verify'
check "object list: secret key" 0 '^secret-key +AES +label="aeskey" id=02 usage=.*encrypt, decrypt'
check "object list: count" 0 '^3 objects$'
$P11 --token-label test --login --pin 1234 -O 2>/dev/null > "$dir/p11objs"
run "$HSMC" object list --token test --pin-file "$dir/pin" --json
pycheck "object list --json: as pkcs11-tool -O" "
import json, sys, re
d = json.load(open(sys.argv[1]))
assert d['logged_in'] is True and d['count'] == 3 == len(d['objects']), d
cls = {'Private Key Object': 'private-key', 'Public Key Object': 'public-key', 'Secret Key Object': 'secret-key'}
p11 = []
cur = None
for line in open('$dir/p11objs'):
    m = re.match(r'^(Private Key Object|Public Key Object|Secret Key Object); (\w+)', line)
    if m:
        cur = {'class': cls[m.group(1)], 'key_type': m.group(2), 'usage': set(), 'sensitive': False}
        p11.append(cur)
    elif cur is not None:
        k, _, v = line.strip().partition(':')
        v = v.strip()
        if k == 'label': cur['label'] = v
        elif k == 'ID': cur['id'] = v
        elif k == 'Usage': cur['usage'] = set(w.strip() for w in v.split(',')) - {'none'}
        elif k == 'Access': cur['sensitive'] = 'sensitive' in [w.strip() for w in v.split(',')]
assert len(p11) == 3, p11
mine = {(o['class'], o['label']): o for o in d['objects']}
for o in p11:
    m = mine[(o['class'], o['label'])]
    assert m['key_type'] == o['key_type'] and m['id'] == o['id'], (m, o)
    usage = set(m['usage'])
    # pkcs11-tool does not print CKA_SIGN for secret keys.
    if o['class'] == 'secret-key': usage.discard('sign')
    assert usage == o['usage'], (m, o)
    assert m['sensitive'] == o['sensitive'], (m, o)
"
run "$HSMC" object list --token test
check "object list without PIN: public objects only" 0 '^2 objects$' 'not logged in'
if grep -q '^private-key' "$dir/out"; then bad "object list without PIN shows a private key"; else ok "object list without PIN hides the private key"; fi
run "$HSMC" object list --token test --pin-file "$dir/pin" --label dev
check "object list --label" 0 '^2 objects$'
run "$HSMC" object list --token test --pin-file "$dir/pin" --type private
check "object list --type private" 0 '^1 object$'
check "object list --type private: the EC key" 0 '^private-key +EC +label="dev"'
run "$HSMC" object list --token test --pin-file "$dir/pin" --type secret-key --id 02
check "object list --type secret-key --id 02" 0 '^secret-key +AES +label="aeskey" id=02'
run "$HSMC" object list --token test --pin-file "$dir/pin" --id 0x01 --type public
check "object list --id 0x01 --type public" 0 '^1 object$'
run "$HSMC" object list --pin-file "$dir/pin" --object 'pkcs11:token=test;object=dev;type=public'
check "object list --object URI (token from the URI)" 0 '^public-key +EC +label="dev" id=01'
check "object list --object URI: one object" 0 '^1 object$'
run "$HSMC" object list --token test --pin-file "$dir/pin" --object 'pkcs11:id=%02'
check "object list --object id=%02" 0 '^secret-key +AES +label="aeskey"'
run "$HSMC" object list --token test --pin-file "$dir/pin" --label nothing
check "object list: no match is 0 objects" 0 '^0 objects$'
run "$HSMC" object list --token test --type bogus
check "object list --type bogus" 2 '' 'expected private, public, cert, secret-key or data'
run "$HSMC" object list --token test --id zz
check "object list --id zz" 2 '' '^hsmc: --id: expected'
run "$HSMC" object list --token other --pin-file "$dir/pin"
check "object list: odd label escaped on the terminal" 0 '^secret-key +AES +label="q"b\\\\ü\\x09t" id=a0b1'
run "$HSMC" object list --token other --pin-file "$dir/pin" --json
pycheck "object list --json: odd label round-trips" "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['objects'][0]['label'] == 'q\"b\\\\ü\tt', repr(d['objects'][0]['label'])
assert d['objects'][0]['id'] == 'a0b1'
"

# ---- token test ---------------------------------------------------------------------------
run "$HSMC" token test --token test --pin-file "$dir/pin"
check "token test" 0 '^  aes-gcm +works +CKM_AES_GCM'
check "token test: rsa-oaep-sha256 broken" 0 '^  rsa-oaep-sha256 +broken +CKM_RSA_PKCS_OAEP +CKR_'
check "token test: summary" 0 '^[0-9]+ of [0-9]+ operations work'
never_pin "token test"
run "$HSMC" token test --token test --pin-file "$dir/pin" --json
pycheck "token test --json" "
import json, sys
d = json.load(open(sys.argv[1]))
ops = {o['op']: o for o in d['operations']}
assert ops['aes-gcm']['status'] == 'works', ops['aes-gcm']
assert ops['rsa-oaep-sha256']['status'] == 'broken' and ops['rsa-oaep-sha256']['rv'], ops['rsa-oaep-sha256']
assert d['works'] == sum(1 for o in d['operations'] if o['status'] == 'works')
assert d['total'] == len(d['operations'])
"
run "$HSMC" token test --token test --list-only
check "token test --list-only needs no PIN" 0 'operations listed'

# ---- PIN sources ----------------------------------------------------------------------------
run env MYPIN=1234 "$HSMC" token test --token test --pin-env MYPIN -q
check "PIN via --pin-env" 0 'operations work'
run env HSMC_PIN=1234 "$HSMC" token test --token test
check "PIN via HSMC_PIN" 0 'operations work'
run env HSMC_PIN_FILE="$dir/pin" "$HSMC" token test --token test
check "PIN via HSMC_PIN_FILE" 0 'operations work'
run "$HSMC" token test --token "pkcs11:token=test?pin-source=file:$dir/pin"
check "PIN via pin-source in the URI" 0 'operations work'
run env HSMC_PIN=1234 "$HSMC" -vv token test --token test
check "-vv logs to stderr" 0 'operations work' '^hsmc: \[(info|debug)\]'
never_pin "-vv token test"

# The terminal prompt: script(1) gives hsmc a pseudo-terminal; the PIN is
# typed after a pause so that it arrives once echo is off.
if command -v script >/dev/null; then
  set +e
  (sleep 2; printf '1234\r') | script -qfec "$HSMC token test --token test -q" /dev/null > "$dir/out" 2> "$dir/err"
  rc=$?
  set -e
  check "PIN asked on the terminal" 0 'operations work'
  grep -q 'User PIN for token .test.:' "$dir/out" && ok "terminal prompt names the token" || bad "terminal prompt"
fi
run "$HSMC" object list --token test --login
check "object list --login without a terminal: exit 5" 5 '' 'needs the user PIN'

# ---- errors ------------------------------------------------------------------------------------
run "$HSMC" token test --token test --pin-file "$dir/badpin"
check "wrong PIN: exit 5" 5 '' 'HSMC_ERR_PIN_INCORRECT'
check "wrong PIN: CKR name and hint" 5 '' 'CKR_PIN_INCORRECT'
check "wrong PIN: hint" 5 '' 'retry counter dropped by one'
never_pin "wrong PIN"
run "$HSMC" token test --token test --pin-file "$dir/emptypin"
check "empty PIN file: exit 5" 5 '' 'HSMC_ERR_PIN_SOURCE'
run "$HSMC" token test --token test --pin-file "$dir/no-such-file"
check "missing PIN file: exit 5" 5 '' 'HSMC_ERR_PIN_SOURCE'
run "$HSMC" token test --token test --pin-env HSMC_NO_SUCH_VARIABLE
check "unset --pin-env variable: exit 5" 5 '' 'HSMC_ERR_PIN_SOURCE'
run "$HSMC" token test --token test
check "no PIN, no terminal: exit 5" 5 '' 'needs the user PIN'
check "no PIN: lists the PIN options" 5 '' '--pin-file FILE, --pin-env NAME.*HSMC_PIN'
run "$HSMC" token info --token nosuch
check "missing token: exit 4" 4 '' 'HSMC_ERR_TOKEN_NOT_FOUND'
check "missing token: hint" 4 '' 'run `hsmc token list` to see the labels'
run "$HSMC" token info
check "two tokens, none chosen: exit 4" 4 '' 'HSMC_ERR_TOKEN_AMBIGUOUS'
# One initialised token next to SoftHSM2's blank spare: "any token" takes it.
softhsm_conf "$dir/one"
SOFTHSM2_CONF="$dir/one/softhsm2.conf" new_token only
run env SOFTHSM2_CONF="$dir/one/softhsm2.conf" "$HSMC" token info
check "one initialised token + a blank one, none chosen: the initialised one" 0 'only'
run env SOFTHSM2_CONF="$dir/one/softhsm2.conf" "$HSMC" token info --token 'pkcs11:token='
check "the blank token can still be chosen explicitly" 0
run "$HSMC" token list --module /nonexistent
check "--module /nonexistent: exit 3" 3 '' 'HSMC_ERR_MODULE_LOAD'
check "--module /nonexistent: hint" 3 '' 'check --module / HSMC_MODULE'
run "$HSMC" token list --module /etc/passwd
check "--module /etc/passwd: exit 3" 3 '' 'cannot load PKCS#11 module /etc/passwd'
run env HSMC_MODULE=/nonexistent "$HSMC" token list
check "HSMC_MODULE=/nonexistent: exit 3" 3 '' 'HSMC_ERR_MODULE_LOAD'
run env HSMC_MODULE=/nonexistent "$HSMC" token info --token "pkcs11:token=test?module-path=$MODULE"
check "module-path in the URI beats HSMC_MODULE" 0 '^  label: +test$'
run "$HSMC" token info --module /nonexistent --token "pkcs11:token=test?module-path=$MODULE"
check "--module beats module-path in the URI" 3 '' 'HSMC_ERR_MODULE_LOAD'
run env HSMC_TOKEN=test "$HSMC" token info
check "HSMC_TOKEN selects the token" 0 '^  label: +test$'
if [ "$MODULE" = /usr/lib/softhsm/libsofthsm2.so ]; then
  run env -u HSMC_MODULE "$HSMC" token list
  check "default module" 0 '^Module: Implementation of PKCS11'
fi

for pinarg in "--pin 1234" "--pin=1234" "-p 1234" "-p1234" "--so-pin 12345678"; do
  # shellcheck disable=SC2086
  run "$HSMC" token test --token test $pinarg
  check "'$pinarg' refused: exit 2" 2 '' 'must not be given on the command line.*--pin-file'
  never_pin "'$pinarg' refused"
done
run "$HSMC" --pin 1234 frobnicate --bogus
check "PIN refused before other usage errors" 2 '' 'must not be given on the command line'
run "$HSMC" token test --token 'pkcs11:token=test?pin-value=1234'
check "URI with pin-value refused: exit 2" 2 '' 'must not be given on the command line'
never_pin "URI with pin-value"
run "$HSMC" object list --token test --object 'pkcs11:object=dev?pin-value=1234'
check "--object URI with pin-value refused: exit 2" 2 '' 'must not be given on the command line'
run "$HSMC" token info --token 'pkcs11:token=test;bogus=1'
check "malformed URI (unknown attribute): exit 2" 2 '' 'not a valid PKCS#11 URI'
run "$HSMC" token info --token 'pkcs11:token=te%zzst'
check "malformed URI (bad escape): exit 2" 2 '' 'not a valid PKCS#11 URI'
run "$HSMC" object list --token test --object 'pkcs11:object=dev;object=x'
check "malformed --object URI: exit 2" 2 '' 'not a valid PKCS#11 URI'
run "$HSMC" frobnicate
check "unknown command: exit 2" 2 '' "unknown command 'frobnicate'"
check "unknown command: points to --help" 2 '' 'run `hsmc --help`'
run "$HSMC" token lst
check "unknown verb: suggestion" 2 '' "did you mean 'token list'"
run "$HSMC" token list --frob=1
check "unknown option: exit 2" 2 '' "unknown option '--frob'"
run "$HSMC" token list --token
check "option without its argument: exit 2" 2 '' 'needs an argument'
run "$HSMC" token info --token test --pin-file "$dir/pin" --pin-env X
check "--pin-file with --pin-env: exit 2" 2 '' 'only one of'
run "$HSMC" token
check "group without command: exit 2" 2 '' 'which token command'
run "$HSMC"
check "no command: exit 2" 2 '' 'which command'

# ---- help ------------------------------------------------------------------------------------------
run "$HSMC" --help
check "hsmc --help" 0 '^Usage: hsmc'
check "hsmc --help: exit codes" 0 '^  5  PIN or login problem'
check "hsmc --help: environment" 0 'HSMC_MODULE'
cmds=$(sed -n 's/^  \(token\|object\) \([a-z-]*\) .*/\1 \2/p' "$dir/out")
ncmds=0
while read -r group verb; do
  ncmds=$((ncmds + 1))
  run "$HSMC" "$group" "$verb" --help
  check "hsmc $group $verb --help" 0 "^Usage: hsmc $group $verb"
  run "$HSMC" "$group" "$verb" -h
  check "hsmc $group $verb -h" 0 "^Usage: hsmc $group $verb"
  run "$HSMC" help "$group" "$verb"
  check "hsmc help $group $verb" 0 "^Usage: hsmc $group $verb"
done <<< "$cmds"
[ "$ncmds" -ge 5 ] && ok "hsmc --help lists $ncmds commands" || bad "hsmc --help lists $ncmds commands"
for g in token object; do
  run "$HSMC" "$g" --help
  check "hsmc $g --help" 0 "^Usage: hsmc $g COMMAND"
  run "$HSMC" help "$g"
  check "hsmc help $g" 0 "^Usage: hsmc $g COMMAND"
done
run "$HSMC" help
check "hsmc help" 0 '^Usage: hsmc'
run "$HSMC" -h
check "hsmc -h" 0 '^Usage: hsmc'
run "$HSMC" --version
check "hsmc --version" 0 '^hsmc [0-9]+\.[0-9]+\.[0-9]+$'

summary
