#!/usr/bin/env bash
# test_cli_x509.sh: `hsmc csr create`, `hsmc ca init`, `hsmc cert issue|store|show`
# and `hsmc crl gen` against two fresh SoftHSM2 tokens: "ca" (root and issuing
# CA keys) and "dev" (device keys). Every CSR, certificate and CRL is checked
# by openssl (and certtool where it parses them too); the policy gates
# (HSMC_ROLE, HSMC_ALLOW_ROOT_CA, --ceremony, name rules) by their exit code 11
# and the rule named on stderr.
#   HSMC_CLI             the hsmc binary (set by ctest)
#   HSMC_TEST_BINARY_DIR build directory (fallback: $HSMC_TEST_BINARY_DIR/cli/hsmc)
#   HSMC_TEST_MODULE     SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)
set -euo pipefail

# run, check, ok/bad, SoftHSM2 set-up: shared by the test scripts.
. "$(dirname "$0")/cli_lib.sh"
find_hsmc
need_tools softhsm2-util pkcs11-tool openssl certtool "$PY"
new_dir cli-x509
test_tokens ca dev
# Token "ca" unless a command says --token dev.
export HSMC_TOKEN=ca HSMC_PIN_FILE="$dir/pin"
# stdout may be DER: only stderr is shown with a failure.
on_bad() { show_run err; }
# tool NAME CMD...: an external check that must succeed.
tool() {
  local name=$1; shift
  if "$@" > "$dir/tool.out" 2>&1; then ok "$name"; else
    bad "$name"; sed 's/^/       out: /' "$dir/tool.out" | head -10; fi
}
# objects TOKEN: number of objects pkcs11-tool sees after login.
objects() {
  pkcs11-tool --module "$MODULE" --token-label "$1" --login --pin 1234 -O 2>/dev/null |
    grep -c 'Object;' || true
}
# fp FILE: SHA-256 fingerprint as openssl prints it.
fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/^.*=//'; }

H="$HSMC"
W="$dir/w"
mkdir -p "$W" "$W/csrs" "$W/certs" "$W/certs-tty"
ROOTSUBJ="CN=hsmc Test Root,O=hsmc test,C=DE"

# ---- help -------------------------------------------------------------------------------------------
for cmd in "csr create" "ca init" "cert issue" "cert store" "cert show" "crl gen"; do
  # shellcheck disable=SC2086
  run $H $cmd --help
  check "hsmc $cmd --help" 0 "^Usage: hsmc $cmd "
done
run $H --help
check "hsmc --help: exit code 11" 0 '^ 11  refused by the certificate policy'
check "hsmc --help: HSMC_ALLOW_ROOT_CA" 0 '^  HSMC_ALLOW_ROOT_CA'
run $H cert --help
check "hsmc cert --help lists issue, store, show" 0 '^  show '

# ---- ca init: the gates ----------------------------------------------------------------------------------
n0=$(objects ca)
run $H ca init --key root --subject "$ROOTSUBJ" --ceremony CER-1 --out "$W/root.pem" -v
check "ca init without HSMC_ALLOW_ROOT_CA: exit 11" 11 '' 'detail: root: .*HSMC_ALLOW_ROOT_CA=true'
check "ca init refused -v: audit record of the refusal" 11 '' \
  'audit: .*op=issue result=HSMC_ERR_POLICY .*ca_key="root" ceremony="CER-1" detail="root: '
run env HSMC_ALLOW_ROOT_CA=true $H ca init --key root --subject "$ROOTSUBJ" --out "$W/root.pem"
check "ca init without --ceremony: exit 11" 11 '' 'detail: root: no ceremony reference'
run env HSMC_ALLOW_ROOT_CA=true $H ca init --key root --subject "$ROOTSUBJ" --ceremony "" --out "$W/root.pem"
check "ca init with an empty --ceremony: exit 11" 11 '' 'root: no ceremony reference'
run env HSMC_ROLE=app HSMC_ALLOW_ROOT_CA=true $H ca init --key root --subject "$ROOTSUBJ" --ceremony CER-1 --out "$W/root.pem"
check "ca init with HSMC_ROLE=app: exit 11" 11 '' 'detail: role: an app process may not issue'
run env HSMC_ALLOW_ROOT_CA=treu $H ca init --key root --subject "$ROOTSUBJ" --ceremony CER-1
check "HSMC_ALLOW_ROOT_CA typo: exit 2" 2 '' 'HSMC_ALLOW_ROOT_CA: expected true or false'
run env HSMC_ROLE=admin HSMC_ALLOW_ROOT_CA=true $H ca init --key root --subject "$ROOTSUBJ" --ceremony CER-1
check "unknown HSMC_ROLE: exit 2" 2 '' "HSMC_ROLE: unknown role 'admin'"
run env HSMC_ALLOW_ROOT_CA=true $H ca init --key root --alg p256 --subject "$ROOTSUBJ" --ceremony CER-1
check "ca init --alg p256 (not a root curve): exit 11" 11 '' 'a root key must be p384, p521'
absent "refused ceremonies write no root.pem" "$W/root.pem"
if [ "$(objects ca)" = "$n0" ]; then ok "refused ceremonies create no token objects"; else bad "refused ceremonies created objects"; fi

# ---- ca init: the root -----------------------------------------------------------------------------------
run env HSMC_ROLE=ca HSMC_ALLOW_ROOT_CA=true $H ca init --key root --subject "$ROOTSUBJ" \
  --ceremony CER-2026-001 --operator alice --store --out "$W/root.pem" -v
check "ca init: exit 0" 0 '' "generated p384 key 'root'"
check "ca init -v: audit record with ceremony and operator" 0 '' \
  'audit: time=[0-9T:-]+Z op=issue result=HSMC_OK role=ca who="alice" profile=ca_root ca_key="root" ceremony="CER-2026-001" serial=[0-9a-f]{32}'
check "ca init: stored on the token" 0 '' 'stored the certificate on the token'
tool "root: openssl verify (self-signed)" openssl verify -CAfile "$W/root.pem" "$W/root.pem"
tool "root: certtool parses" certtool --certificate-info --infile "$W/root.pem"
if openssl x509 -in "$W/root.pem" -noout -text | grep -q 'CA:TRUE' &&
   openssl x509 -in "$W/root.pem" -noout -subject | grep -q 'CN = hsmc Test Root'; then
  ok "root: CA:TRUE and the subject"; else bad "root: CA:TRUE and the subject"; fi
run $H cert show --key root
check "cert show --key root (stored by --store)" 0 "^SHA-256 fingerprint: $(fp "$W/root.pem")\$"
run env HSMC_ALLOW_ROOT_CA=true $H ca init --key root --alg p521 --subject "$ROOTSUBJ" --ceremony CER-2
check "ca init --alg differing from the existing key: exit 2" 2 '' 'exists and is p384'

# ---- intermediate from an hsmc CSR ------------------------------------------------------------------------
$H key gen --label int --purpose ca_intermediate > /dev/null
run $H csr create --key int --subject "CN=hsmc Issuing CA,O=hsmc test,C=DE" --out "$W/int.csr"
check "csr create (issuing CA key)" 0
tool "int.csr: openssl req -verify" openssl req -in "$W/int.csr" -verify -noout
tool "int.csr: certtool --crq-info" certtool --crq-info --infile "$W/int.csr"
run $H cert issue --ca-key root --ca-cert "$W/root.pem" --profile ca_intermediate --csr "$W/int.csr" --out "$W/int.pem"
check "intermediate from the root without HSMC_ALLOW_ROOT_CA: exit 11" 11 '' 'root: .*HSMC_ALLOW_ROOT_CA'
run env HSMC_ALLOW_ROOT_CA=true $H cert issue --ca-key root --ca-cert "$W/root.pem" \
  --profile ca_intermediate --csr "$W/int.csr" --out "$W/int.pem"
check "intermediate from the root without --ceremony: exit 11" 11 '' 'root: no ceremony'
run env HSMC_ROLE=app $H cert issue --ca-key root --profile ca_intermediate --csr "$W/int.csr" --out "$W/int.pem"
check "cert issue with HSMC_ROLE=app: exit 11" 11 '' 'role: an app process may not issue'
absent "refused issuance writes no int.pem" "$W/int.pem"
run env HSMC_ROLE=ca HSMC_ALLOW_ROOT_CA=true $H cert issue --ca-key root --profile ca_intermediate \
  --csr "$W/int.csr" --ceremony CER-2026-002 --out "$W/int.pem"
check "intermediate (root certificate from the token)" 0
tool "int.pem: openssl verify -CAfile root.pem" openssl verify -CAfile "$W/root.pem" "$W/int.pem"
tool "int.pem: certtool parses" certtool --certificate-info --infile "$W/int.pem"
if openssl x509 -in "$W/int.pem" -noout -text | grep -q 'CA:TRUE, pathlen:0'; then
  ok "int.pem: CA:TRUE, pathlen:0"; else bad "int.pem: CA:TRUE, pathlen:0"; fi
cat "$W/int.pem" "$W/root.pem" > "$W/int-chain.pem"
run $H cert issue --ca-key root --profile ca_root --csr "$W/int.csr"
check "cert issue --profile ca_root: exit 2 (ca init makes roots)" 2 '' 'hsmc ca init'

# ---- device CSRs on the other token -------------------------------------------------------------------
for i in 01 02 03 04 05 06 07 08; do
  $H key gen --token dev --label "d$i" --purpose mtls_client > "$W/d$i.gen"
  $H csr create --token dev --key "d$i" --subject "CN=dev-$i,O=hsmc test,serialNumber=SN$i" \
    --san "dns:dev-$i.devices.example.com" --san "uri:spiffe://example.org/device/$i" \
    --key-usage digitalSignature --eku clientAuth --out "$W/csrs/dev-$i.csr"
done
# one in DER, to show DER CSRs are taken too
$H csr create --token dev --key d08 --subject "CN=dev-08,O=hsmc test" --san dns:dev-08.devices.example.com \
  --format der --out "$W/csrs/dev-08.der"
rm "$W/csrs/dev-08.csr"
verified=0
for f in "$W"/csrs/dev-0[1-7].csr; do
  if openssl req -in "$f" -verify -noout > /dev/null 2>&1; then verified=$((verified + 1)); fi
done
if openssl req -inform der -in "$W/csrs/dev-08.der" -verify -noout > /dev/null 2>&1; then verified=$((verified + 1)); fi
if [ "$verified" = 8 ]; then ok "openssl req -verify accepts the 8 device CSRs (PEM and DER)"; else bad "openssl req -verify: $verified of 8"; fi
tool "device CSR: certtool --crq-info" certtool --crq-info --infile "$W/csrs/dev-01.csr"
if openssl req -in "$W/csrs/dev-01.csr" -noout -text |
   grep -q 'DNS:dev-01.devices.example.com, URI:spiffe://example.org/device/01'; then
  ok "device CSR carries the SANs"; else bad "device CSR carries the SANs"; fi
# hostile: a leaf CSR asking for cA=TRUE (openssl, software key), and one with a SAN outside the rules
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/hostile.key" \
  -subj "/CN=dev-99/O=hsmc test" -addext "basicConstraints=critical,CA:TRUE" \
  -out "$W/csrs/hostile.csr" 2> /dev/null
$H csr create --token dev --key d01 --subject "CN=dev-01,O=hsmc test" --san dns:evil.attacker.example \
  --out "$W/csrs/evilsan.csr"
tool "hostile CSRs are valid CSRs" openssl req -in "$W/csrs/hostile.csr" -verify -noout

# ---- a directory of 10 CSRs in one run ------------------------------------------------------------------
run env HSMC_ROLE=ca $H cert issue --ca-key int --ca-cert "$W/int-chain.pem" --profile mtls_client \
  --csr "$W/csrs" --out-dir "$W/certs" --allow-dns devices.example.com \
  --allow-uri spiffe://example.org/device/ -v
check "batch: exit 11 because of the two refused CSRs" 11
check "batch: summary 8 of 10" 11 '' '^hsmc: 8 of 10 CSRs issued, 2 failed \(evilsan.csr, hostile.csr\) in '
check "batch: cA=TRUE refused with a hint" 11 '' '^hsmc: hostile.csr: cannot issue .*HSMC_ERR_CSR_EXT'
check "batch: cA=TRUE hint says what to do" 11 '' 'hint: a leaf certificate cannot be a CA: ask for a new CSR'
check "batch: disallowed SAN refused, rule named" 11 '' "detail: san-dns: 'evil.attacker.example' is outside"
check "batch: disallowed SAN hint" 11 '' 'hint: the CSR names a host outside --allow-dns'
check "batch -v: one audit record per CSR (refusals too)" 11 '' 'audit: .*op=issue result=HSMC_ERR_CSR_EXT role=ca'
audits=$(grep -c 'audit: .*op=issue' "$dir/err" || true)
if [ "$audits" = 10 ]; then ok "batch -v: 10 audit records"; else bad "batch -v: $audits audit records"; fi
n=$(find "$W/certs" -type f | wc -l)
if [ "$n" = 8 ]; then ok "batch: 8 certificate files, no temporaries"; else bad "batch: $n files in certs/"; fi
absent "batch: no certificate for hostile.csr" "$W/certs/hostile.pem"
absent "batch: no certificate for evilsan.csr" "$W/certs/evilsan.pem"
verified=0
for f in "$W"/certs/*.pem; do
  if openssl verify -purpose sslclient -CAfile "$W/root.pem" -untrusted "$W/int.pem" "$f" > /dev/null 2>&1; then
    verified=$((verified + 1)); fi
done
if [ "$verified" = 8 ]; then ok "batch: openssl verify -CAfile root.pem -untrusted int.pem accepts all 8"
else bad "batch: openssl verify accepted $verified of 8"; fi
tool "device certificate: certtool parses" certtool --certificate-info --infile "$W/certs/dev-01.pem"
# SubjectPublicKeyInfo in the certificate = the token's public key
$H key export-pub --token dev d03 --format der --out "$W/d03.spki"
openssl x509 -in "$W/certs/dev-03.pem" -noout -pubkey | openssl pkey -pubin -outform der > "$W/d03.cert.spki"
same "certificate SPKI is the device key's (byte-equal)" "$W/d03.spki" "$W/d03.cert.spki"
if openssl x509 -in "$W/certs/dev-05.pem" -noout -text | grep -q 'TLS Web Client Authentication' &&
   ! openssl x509 -in "$W/certs/dev-05.pem" -noout -text | grep -q 'CA:TRUE'; then
  ok "device certificate: clientAuth, not a CA"; else bad "device certificate: clientAuth, not a CA"; fi

# the same directory on a terminal: the progress line is drawn in place
tty_wait=30 on_tty "" "$H" cert issue --ca-key int --ca-cert "$W/int-chain.pem" --profile mtls_client \
  --csr "$W/csrs" --out-dir "$W/certs-tty" --allow-dns devices.example.com \
  --allow-uri spiffe://example.org/device/
if [ "$rc" = 11 ] && grep -qF $'\033[Khsmc: 10/10 CSRs, ' "$dir/tty" &&
   tr -d '\r' < "$dir/tty" | grep -q 'hsmc: 10/10 CSRs, [0-9.]*/s, 2 failed$' &&
   grep -q 'hsmc: 8 of 10 CSRs issued, 2 failed' "$dir/tty"; then
  ok "batch on a terminal: progress line (done/total, rate, failures) and summary"
else : > "$dir/err"; bad "batch on a terminal (exit $rc)"; sed 's/^/       tty: /' "$dir/tty" | head -20; fi

# ---- single CSRs: chain, DER, refusals --------------------------------------------------------------------
run $H cert issue --ca-key int --ca-cert "$W/int-chain.pem" --profile mtls_client --csr "$W/csrs/dev-02.csr" \
  --allow-dns devices.example.com --allow-uri spiffe://example.org/device/ --chain
check "cert issue --chain to stdout" 0
cp "$dir/out" "$W/dev-02-chain.pem"
nblk=$(grep -c 'BEGIN CERTIFICATE' "$W/dev-02-chain.pem" || true)
if [ "$nblk" = 2 ]; then ok "--chain: leaf + intermediate, no root"; else bad "--chain: $nblk certificates"; fi
tool "--chain output verifies (-untrusted = the chain)" openssl verify -CAfile "$W/root.pem" \
  -untrusted "$W/dev-02-chain.pem" "$W/dev-02-chain.pem"
run $H cert issue --ca-key int --ca-cert "$W/int-chain.pem" --profile mtls_client --csr "$W/csrs/dev-04.csr" \
  --allow-dns devices.example.com --allow-uri spiffe://example.org/device/ --format der --out "$W/dev-04.der"
check "cert issue --format der" 0
openssl x509 -inform der -in "$W/dev-04.der" -out "$W/dev-04.pem"
tool "DER certificate verifies (openssl x509 -inform der)" openssl verify -CAfile "$W/root.pem" \
  -untrusted "$W/int.pem" "$W/dev-04.pem"
$H cert show --cert "$W/dev-04.der" --format pem --out "$W/dev-04.hsmc.pem"
same "cert show: DER -> PEM equals openssl's" "$W/dev-04.pem" "$W/dev-04.hsmc.pem"
$H cert show --cert "$W/dev-04.pem" --format der --out "$W/dev-04.hsmc.der"
same "cert show: PEM -> DER equals the issued DER" "$W/dev-04.der" "$W/dev-04.hsmc.der"
run $H cert issue --ca-key int --ca-cert "$W/int-chain.pem" --profile mtls_server --csr "$W/csrs/dev-01.csr" \
  --allow-uri spiffe://example.org/device/
check "mtls_server: a DNS SAN outside the (empty) rules: exit 11" 11 '' 'san-dns'
printf 'not a CSR\n' > "$W/garbage.csr"
run $H cert issue --ca-key int --ca-cert "$W/int-chain.pem" --profile mtls_client --csr "$W/garbage.csr"
check "garbage CSR: exit 1, HSMC_ERR_CSR" 1 '' 'HSMC_ERR_CSR\)'
openssl req -in "$W/csrs/dev-06.csr" -outform der -out "$W/tampered.der"
"$PY" -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[-1] ^= 1; open(sys.argv[1], "wb").write(b)' "$W/tampered.der"
run $H cert issue --ca-key int --ca-cert "$W/int-chain.pem" --profile mtls_client --csr "$W/tampered.der" \
  --allow-dns devices.example.com --allow-uri spiffe://example.org/device/
check "CSR with a broken self-signature: exit 8" 8 '' 'HSMC_ERR_SIGNATURE.*|hint: the CSR.s self-signature does not verify'
run $H cert issue --ca-key int --ca-cert "$W/root.pem" --profile mtls_client --csr "$W/csrs/dev-01.csr"
check "--ca-cert of another key: refused" 1 '' 'HSMC_ERR_CERT_KEY'

# ---- csr create: input errors ----------------------------------------------------------------------------
run $H csr create --token dev --key d01 --subject "CN=x" --san ftp:x
check "csr create --san ftp:x: exit 2" 2 '' 'must be dns:NAME, ip:ADDRESS'
run $H csr create --token dev --key d01 --subject "CN=x,garbage"
check "csr create, malformed subject: exit 1, HSMC_ERR_FORMAT" 1 '' 'HSMC_ERR_FORMAT'
run $H csr create --token dev --key d01 --subject "CN=x" --eku serverAuth,bogus
check "csr create --eku bogus: exit 2" 2 '' "unknown word 'bogus'"
run env HSMC_ROLE=app $H csr create --token dev --key d01 --subject "CN=dev-01" --san ip:192.0.2.7 \
  --san email:ops@example.com --key-usage digitalSignature,keyAgreement --format der --out "$W/app.der"
check "csr create with HSMC_ROLE=app, DER, IP and e-mail SANs" 0
tool "DER CSR: openssl req -inform der -verify" openssl req -inform der -in "$W/app.der" -verify -noout
if openssl req -inform der -in "$W/app.der" -noout -text | grep -q 'IP Address:192.0.2.7, email:ops@example.com'; then
  ok "CSR: IP and e-mail SANs"; else bad "CSR: IP and e-mail SANs"; fi
run $H csr create --token dev --key nosuchkey --subject "CN=x"
check "csr create with an unknown key: exit 6" 6

# ---- cert store / show ------------------------------------------------------------------------------------
n1=$(objects dev)
run $H cert store --token dev --key d01 --cert "$W/certs/dev-01.pem"
check "cert store" 0 "^stored certificate for key 'd01' \\(id=[0-9a-f]+\\)"
id=$(sed -n 's/^.* id=\([0-9a-f]*\) .*$/\1/p' "$W/d01.gen")
if pkcs11-tool --module "$MODULE" --token-label dev -O --type cert 2> /dev/null |
   tr -d ' ' | grep -A4 'label:d01' | grep -qi "ID:$id"; then
  ok "pkcs11-tool -O lists the certificate with the key's label and id"
else bad "pkcs11-tool -O lists the certificate with the key's id ($id)"; fi
run $H cert show --token dev --key d01
check "cert show --key: fingerprint as openssl's" 0 "^SHA-256 fingerprint: $(fp "$W/certs/dev-01.pem")\$"
check "cert show: subject" 0 '^Subject: +CN=dev-01, O=hsmc test, serialNumber=SN01$'
check "cert show: SANs" 0 '^SANs: +DNS:dev-01.devices.example.com, URI:spiffe://example.org/device/01$'
check "cert show: key usage, EKU, CA:FALSE" 0 '^Basic constraints: +CA:FALSE$'
check "cert show: serial" 0 "^Serial: +$(openssl x509 -in "$W/certs/dev-01.pem" -noout -serial | sed 's/^serial=//; s/../&:/g; s/:$//')\$"
keyfp=$($H key show --token dev d01 | sed -n 's/^ *SPKI SHA-256: *\([0-9a-f]\{64\}\)$/\1/p')
if [ -n "$keyfp" ] && grep -q "^SPKI SHA-256: *$keyfp\$" "$dir/out"; then
  ok "cert show: SPKI SHA-256 = hsmc key show's"; else bad "cert show: SPKI SHA-256 ($keyfp)"; fi
run $H cert show --token dev --label d01 --format pem
check "cert show --label --format pem" 0
same "cert show --label: the stored certificate" "$dir/out" "$W/certs/dev-01.pem"
run $H cert store --token dev --key d02 --cert "$W/certs/dev-01.pem"
check "cert store for another key: refused" 1 '' 'HSMC_ERR_CERT_KEY'
run $H cert store --token dev --key d01 --cert "$W/certs/dev-01.pem"
check "cert store again (replaces)" 0
if [ "$(objects dev)" = $((n1 + 1)) ]; then ok "cert store: one certificate object per key"; else bad "cert store: object count"; fi
run $H cert show --token dev --key d03
check "cert show for a key without certificate: exit 6" 6 '' 'hint: store one with'

# ---- crl gen ----------------------------------------------------------------------------------------------
serial=$(openssl x509 -in "$W/certs/dev-02.pem" -noout -serial | sed 's/^serial=//')
printf '# revoked by the test\n\n%s 20260101000000Z keyCompromise\n' "$serial" > "$W/revoked.txt"
run env HSMC_ROLE=ca $H crl gen --ca-key int --ca-cert "$W/int-chain.pem" --revoked "$W/revoked.txt" \
  --next-update-hours 24 --number 7 --out "$W/int.crl" -v
check "crl gen" 0 '' 'audit: .*op=crl result=HSMC_OK role=ca .*crl_number=07'
if openssl crl -in "$W/int.crl" -CAfile "$W/int-chain.pem" -noout 2>&1 | grep -q 'verify OK'; then
  ok "openssl crl -CAfile: verify OK"; else bad "openssl crl -CAfile: verify OK"; fi
if openssl crl -in "$W/int.crl" -noout -text | grep -q "Serial Number: $serial" &&
   openssl crl -in "$W/int.crl" -noout -text | grep -q 'Key Compromise'; then
  ok "CRL lists the serial and the reason"; else bad "CRL lists the serial and the reason"; fi
tool "CRL: certtool --crl-info" certtool --crl-info --infile "$W/int.crl"
if openssl verify -crl_check -CRLfile "$W/int.crl" -CAfile "$W/root.pem" -untrusted "$W/int.pem" \
     "$W/certs/dev-02.pem" > "$dir/tool.out" 2>&1; then bad "verify -crl_check accepted the revoked leaf"
elif grep -q 'certificate revoked' "$dir/tool.out"; then ok "verify -crl_check rejects the revoked leaf"
else bad "verify -crl_check: not 'certificate revoked'"; fi
tool "verify -crl_check accepts a leaf not revoked" openssl verify -crl_check -CRLfile "$W/int.crl" \
  -CAfile "$W/root.pem" -untrusted "$W/int.pem" "$W/certs/dev-03.pem"
run $H crl gen --ca-key int --ca-cert "$W/int-chain.pem" --revoked "$W/revoked.txt" --format der --out "$W/int.crl.der"
check "crl gen --format der" 0
tool "DER CRL: openssl crl -inform der" openssl crl -inform der -in "$W/int.crl.der" -CAfile "$W/int-chain.pem" -noout
printf '0a1b\nnot-a-serial\n' > "$W/bad-revoked.txt"
run $H crl gen --ca-key int --ca-cert "$W/int-chain.pem" --revoked "$W/bad-revoked.txt"
check "crl gen, malformed line: exit 1, line named" 1 '' 'line 2:'
run env HSMC_ROLE=app $H crl gen --ca-key int --ca-cert "$W/int-chain.pem" --revoked "$W/revoked.txt"
check "crl gen with HSMC_ROLE=app: exit 11" 11 '' 'role: an app process may not sign CRLs'
: > "$W/empty.txt"
run $H crl gen --ca-key root --revoked "$W/empty.txt" --out "$W/root.crl"
check "root CRL without HSMC_ALLOW_ROOT_CA: exit 11" 11 '' 'root: '
run env HSMC_ALLOW_ROOT_CA=true $H crl gen --ca-key root --revoked "$W/empty.txt" --ceremony CER-3 --out "$W/root.crl"
check "root CRL in a ceremony (certificate from the token)" 0
tool "root CRL: openssl crl -CAfile root.pem" openssl crl -in "$W/root.crl" -CAfile "$W/root.pem" -noout
run $H crl gen --ca-key int --ca-cert "$W/int-chain.pem"
check "crl gen without --revoked: exit 2" 2 '' 'an empty file for a CRL without entries'

summary
