#!/usr/bin/env bash
# test_readme_guides.sh: the commands of README.md's "## Guides" run as
# written, and do what the text says.
#   Gateway and Manufacturing line: every ```sh block of the subsection,
#   command by command (one check each: exit 0), in a prepared directory,
#   then the outcome checked with tools we did not write (openssl,
#   pkcs11-tool, cmp) or with another hsmc command.
#   Firmware: the ```c block, wrapped in a main() with a stub
#   board_read_pin(), compiled with the project's warning flags against the
#   static-port library with SoftHSM2 linked in (the guide's step 1), run on a
#   token; openssl verifies the signature it makes.
# The only changes made to the guide's text are paths (substitutions below);
# everything else runs verbatim.
#   HSMC_CLI              the hsmc binary (set by ctest)
#   HSMC_TEST_BINARY_DIR  build directory (hsmc, samples/at_rest/at_rest,
#                         test/libhsmc_static_softhsm.a)
#   HSMC_TEST_SOURCE_DIR  source directory (README.md)
#   HSMC_TEST_MODULE      SoftHSM2 module (default /usr/lib/softhsm/libsofthsm2.so)
set -euo pipefail

src=${HSMC_TEST_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${HSMC_TEST_BINARY_DIR:-$src/build}
# run, check, ok/bad, SoftHSM2 set-up: shared by the test scripts.
# shellcheck source=SCRIPTDIR/cli_lib.sh
. "$src/test/scripts/cli_lib.sh"
find_hsmc
AT_REST=$build/samples/at_rest/at_rest
README=$src/README.md
CC=${CC:-cc}
[ -f "$README" ] || { echo "test_readme_guides: $README not found" >&2; exit 1; }
need_tools softhsm2-util pkcs11-tool openssl "$PY" "$CC"
new_dir guides
t0=$(date +%s%N)
on_bad() { show_run out err; }
# miss NAME: a failure without the last command's output.
miss() { : > "$dir/out"; : > "$dir/err"; bad "$1"; }
die() { echo "FAIL - $*"; echo "$pass passed, $((fail + 1)) failed"; exit 1; }

# ---- the guide's text ----------------------------------------------------------------
# extract README SECTION LANG OUT: the ```LANG blocks of the "### SECTION..."
# subsection (up to the next ## or ### heading), de-indented. For sh, one
# command per NUL-terminated record (backslash continuations kept, blank and
# comment-only lines dropped) with the path substitutions applied; for c, the
# blocks as text. Exit 1 with a message when the subsection or a block is
# missing. extract README SECTION inline OUT: the subsection's `inline code`
# spans, one per line, substituted the same way.
extract() {
  "$PY" - "$@" <<'PYEOF'
import re, sys
readme, section, lang, out = sys.argv[1:5]
subs = [(a, b) for a, b in (s.split("=>", 1) for s in sys.argv[5:])]
lines = open(readme, encoding="utf-8").read().split("\n")
start = next((i for i, l in enumerate(lines) if l.startswith("### " + section)), None)
if start is None:
    sys.exit("README.md has no subsection '### %s'" % section)
end = next((i for i in range(start + 1, len(lines))
            if lines[i].startswith("## ") or lines[i].startswith("### ")), len(lines))
body = lines[start + 1:end]
def sub(t):
    for a, b in subs:
        t = t.replace(a, b)
    return t
if lang == "inline":
    text = "\n".join(body)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", text.replace("\n" + " " * 3, " "))
    open(out, "w").write("".join(sub(s) + "\n" for s in spans))
    sys.exit(0)
blocks, cur, indent = [], None, 0
for l in body:
    s = l.lstrip(" ")
    if cur is None and s.startswith("```" + lang) and s[3 + len(lang):].strip() == "":
        cur, indent = [], len(l) - len(s)
    elif cur is not None and s.startswith("```"):
        blocks.append(cur)
        cur = None
    elif cur is not None:
        cur.append(l[indent:] if l[:indent].strip() == "" else l.lstrip(" "))
if cur is not None:
    sys.exit("an unclosed ```%s block in '### %s'" % (lang, section))
if not blocks:
    sys.exit("no ```%s block in README.md '### %s'" % (lang, section))
with open(out, "w") as f:
    if lang != "sh":
        f.write("\n\n".join("\n".join(b) for b in blocks) + "\n")
        sys.exit(0)
    n = 0
    for b in blocks:
        cmd = ""
        for l in b:
            if not cmd and (l.strip() == "" or l.lstrip().startswith("#")):
                continue
            cmd += l
            if l.endswith("\\"):
                cmd += "\n"
                continue
            f.write(sub(cmd) + "\0")
            n += 1
            cmd = ""
        if cmd:
            sys.exit("a command in '### %s' ends with a backslash" % section)
print("%d block(s), %d command(s)" % (len(blocks), n))
PYEOF
}
# The substitutions, paths only: the PIN files the guides name become files of
# this test, and the vendor module of the gateway guide is SoftHSM2.
SUBS=("/run/secrets/hsm-pin=>$dir/hsm-pin" "/run/line/pin=>$dir/line-pin"
      "/usr/lib/vendor/libpkcs11.so=>$MODULE")
echo "# README: $README"
echo "# substitutions: ${SUBS[*]}"
# The blocks this test knows: Gateway step 2 (and maybe at_rest), Manufacturing
# steps 1 and 2.
for s in Gateway:1 "Manufacturing line:2"; do
  want=${s##*:} s=${s%:*}
  f=$dir/$(echo "$s" | tr ' A-Z' '-a-z').cmds
  if n=$(extract "$README" "$s" sh "$f" "${SUBS[@]}" 2> "$dir/err"); then
    echo "# $s: $n"
    [ "${n%% *}" -ge "$want" ] || die "$s guide: $want \`\`\`sh block(s) expected, found ${n%% *}"
  else
    die "$s guide: $(tail -n 1 "$dir/err")"
  fi
done
extract "$README" Firmware c "$dir/firmware.c.in" || die "Firmware guide: no C snippet"
extract "$README" Gateway inline "$dir/gateway.inline" "${SUBS[@]}" || die "Gateway guide unreadable"

# ---- tokens, PINs, inputs ------------------------------------------------------------
mkdir -p "$dir/gateway" "$dir/line" "$dir/fw"
softhsm_dir "$dir"
clean_env
pin_file "$dir/hsm-pin" 4711
pin_file "$dir/line-pin" 2468
pin_file "$dir/dev-pin" 1357
new_token gateway 4711
new_token station 2468
devices="dev-0001 dev-0002 dev-0003"
{
  echo "device_id,token_uri"
  for d in $devices; do
    new_token "$d" 1357
    echo "$d,pkcs11:token=$d?module-path=$MODULE&pin-source=file:$dir/dev-pin"
  done
} > "$dir/line/tray-17.csv"
# db.dump above the 8 MiB stream threshold, so the guide's "stream for big
# files" path is the one tested.
head -c $((9 * 1024 * 1024 + 1234)) /dev/urandom > "$dir/gateway/db.dump"
cp "$dir/gateway/db.dump" "$dir/db.dump.orig"
# For samples/at_rest lines: a directory of files and a secret for a record.
mkdir -p "$dir/gateway/data" "$dir/data.orig"
printf 'listen = 0.0.0.0:8883\n' > "$dir/gateway/data/app.conf"
head -c 200000 /dev/urandom > "$dir/gateway/data/events.log"
cp "$dir/gateway/data/"* "$dir/data.orig/"
printf 's3cret-api-token\n' > "$dir/gateway/token.txt"
mkdir -p "$dir/bin"
ln -s "$HSMC" "$dir/bin/hsmc"
if [ -x "$AT_REST" ]; then ln -s "$AT_REST" "$dir/bin/at_rest"; fi
export PATH="$dir/bin:$PATH"

# run_guide NAME CMDFILE WORKDIR: each command through eval in a subshell in
# WORKDIR, stdin closed, one check per command; an `export` line is then also
# run here so that the later commands see it, as in the user's shell.
run_guide() {
  local name=$1 file=$2 wd=$3 cmd first
  while IFS= read -r -d '' cmd; do
    first=${cmd%% *}
    if [ "$first" = at_rest ] && [ ! -x "$AT_REST" ]; then
      echo "note - $name: skipped (samples/at_rest not built): $cmd"
      continue
    fi
    # Keep the envelope an in-place re-wrap replaces, to compare afterwards.
    if [[ $cmd == "hsmc rewrap "*--in-place* && $cmd =~ --file[[:space:]]+([^[:space:]]+) ]]; then
      cp "$wd/${BASH_REMATCH[1]}" "$dir/rewrap.before" 2>/dev/null || true
    fi
    set +e
    (cd "$wd" && eval "$cmd") > "$dir/out" 2> "$dir/err" < /dev/null
    rc=$?
    set -e
    # export lines must reach this shell: the subshell above only checked them.
    case "$cmd" in export\ *) [ "$rc" = 0 ] && eval "$cmd" ;; esac
    check "$name: $(printf '%s' "$cmd" | tr -s '\n\\ ' ' ' | cut -c1-110)" 0
  done < "$file"
}

# ---- Gateway -------------------------------------------------------------------------
echo "# Gateway"
# Step 1: the environment it names (HSMC_*=... spans), then `hsmc token test`.
envs=$(grep -E '^HSMC_[A-Z_]+=' "$dir/gateway.inline" || true)
[ -n "$envs" ] || die "Gateway step 1: no HSMC_...= settings found"
for e in HSMC_MODULE HSMC_TOKEN HSMC_PIN_FILE; do
  grep -q "^$e=" <<<"$envs" || die "Gateway step 1 does not set $e"
done
while IFS= read -r e; do eval "export $e"; done <<<"$envs"
grep -qx 'hsmc token test' "$dir/gateway.inline" || die "Gateway step 1: no \`hsmc token test\`"
run hsmc token test
check "gateway: hsmc token test (env of step 1: $(paste -sd' ' <<<"$envs"))" 0 "operations work"
run_guide gateway "$dir/gateway.cmds" "$dir/gateway"
g=$dir/gateway
same "gateway: db.dump after the guide's decrypt is the original" "$dir/db.dump.orig" "$g/db.dump"
run hsmc decrypt --in "$g/db.cose" --out "$g/db.check"
check "gateway: hsmc decrypt of the re-wrapped db.cose" 0
same "gateway: decrypt of db.cose after rotate + rewrap equals db.dump" "$dir/db.dump.orig" "$g/db.check"
run hsmc key list --json
latest=$("$PY" -c '
import json, re, sys
d = json.load(open(sys.argv[1]))
keys = d["keys"] if isinstance(d, dict) else d
v = sorted(k["label"] for k in keys if re.fullmatch(r"gw-kek-v\d{4}", k["label"]))
print(v[-1] if v else "")' "$dir/out" 2>/dev/null || true)
if [ -n "$latest" ] && [ "$latest" != gw-kek-v0001 ]; then
  ok "gateway: the rotation made a new KEK version ($latest)"
else
  bad "gateway: no KEK version above gw-kek-v0001 on the token (latest: '${latest:-none}')"
fi
run hsmc rewrap --list --file "$g/db.cose"
if [ "$rc" = 0 ] && grep -qw -- "$latest" "$dir/out" && ! grep -qE 'gw-kek(-v0001)?[[:space:]]' "$dir/out"; then
  ok "gateway: rewrap --list shows only the new KEK version $latest"
else
  bad "gateway: rewrap --list (exit $rc) does not show $latest alone"
fi
run hsmc rewrap --list --file "$g/db.cose"
check "gateway: db.dump (9 MiB) was encrypted as a stream" 0 '^stream '
if [ -s "$dir/rewrap.before" ]; then
  # "new KEK, same ciphertext": only the header differs; the chunks (all but
  # the first few KiB of a 9 MiB stream) are the same bytes.
  run "$PY" -c '
import sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
n = 0
while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
    n += 1
assert len(b) - n < 4096 and a != b, (len(a), len(b), n)
print("same last %d of %d bytes" % (n, len(b)))' "$dir/rewrap.before" "$g/db.cose"
  check "gateway: rewrap --in-place changed the header only (same ciphertext)" 0 '^same last'
  # "v0001 still opens old files": the envelope from before the re-wrap.
  run hsmc decrypt --in "$dir/rewrap.before" --out "$g/db.old"
  check "gateway: after the rotation, the old envelope (gw-kek-v0001) still opens" 0
  same "gateway: ... to the same bytes" "$dir/db.dump.orig" "$g/db.old"
else
  miss "gateway: no in-place hsmc rewrap in the guide"
fi
if ! tr '\0' '\n' < "$dir/gateway.cmds" | grep -q '^at_rest '; then
  echo "note - gateway: the guide's sh blocks have no at_rest command (nothing of samples/at_rest run)"
elif [ ! -x "$AT_REST" ]; then
  echo "note - gateway: samples/at_rest not built at $AT_REST: its commands were skipped"
else
  # The at_rest lines ran on data/ (and the record from token.txt).
  run at_rest open "$g/data" --out "$g/opened"
  check "gateway: at_rest open data: the sealed files open" 0
  for f in app.conf events.log; do
    same "gateway: at_rest: data/$f sealed, rotated, opened: same bytes" "$dir/data.orig/$f" "$g/opened/$f"
  done
  run at_rest status "$g/data"
  check "gateway: at_rest status: every file in data/ sealed" 0 \
    '0 plain files not sealed' 
  if grep -qE '^at_rest retire ' <(tr '\0' '\n' < "$dir/gateway.cmds"); then
    run hsmc key list
    if grep -q 'at-rest-kek-v0002' "$dir/out" && ! grep -q 'at-rest-kek-v0001' "$dir/out"; then
      ok "gateway: at_rest retire deleted at-rest-kek-v0001, kept v0002"
    else
      bad "gateway: after at_rest rotate + retire, want at-rest-kek-v0002 alone"
    fi
  fi
  if grep -qE '^at_rest record put ' <(tr '\0' '\n' < "$dir/gateway.cmds"); then
    run at_rest record get "$g/data" api-token
    if [ "$rc" = 0 ] && cmp -s "$dir/out" "$g/token.txt"; then
      ok "gateway: at_rest record get returns what record put stored"
    else
      bad "gateway: at_rest record get api-token (exit $rc) differs from token.txt"
    fi
  fi
fi

# ---- Manufacturing line --------------------------------------------------------------
echo "# Manufacturing line"
unset HSMC_TOKEN HSMC_PIN_FILE
run_guide line "$dir/manufacturing-line.cmds" "$dir/line"
l=$dir/line
for f in root.pem line-ca.pem chain.pem line.audit; do
  [ -s "$l/$f" ] || miss "line: the guide made no $f"
done
run openssl verify -CAfile "$l/root.pem" "$l/root.pem"
check "line: openssl verify: root.pem is a self-signed CA" 0 ': OK$'
run openssl x509 -in "$l/root.pem" -noout -text
check "line: root.pem: P-384 key, CN=Line Root" 0 'NIST CURVE: P-384'
run openssl verify -x509_strict -CAfile "$l/root.pem" "$l/line-ca.pem"
check "line: openssl verify -x509_strict: line-ca.pem under root.pem" 0 ': OK$'
# chain.pem: the line CA then the root, and it verifies as a chain.
run openssl verify -x509_strict -CAfile "$l/root.pem" -untrusted "$l/chain.pem" "$l/line-ca.pem"
check "line: openssl verify with chain.pem as the untrusted chain" 0 ': OK$'
run "$PY" -c '
import sys
t = open(sys.argv[1]).read()
n = t.count("-----BEGIN CERTIFICATE-----")
assert n == 2, n
assert t == open(sys.argv[2]).read() + open(sys.argv[3]).read()
' "$l/chain.pem" "$l/line-ca.pem" "$l/root.pem"
check "line: chain.pem is line-ca.pem then root.pem" 0
# Each device token: the certificate next to the key, issued by the line CA,
# for that key, clientAuth; the private key never extractable.
for d in $devices; do
  tok="pkcs11:token=$d"
  run hsmc cert show --token "$tok" --pin-file "$dir/dev-pin" --key device-key --format pem
  cp "$dir/out" "$l/$d.pem"
  check "line: $d: certificate stored on the device token" 0 'BEGIN CERTIFICATE'
  run openssl verify -x509_strict -purpose sslclient -CAfile "$l/root.pem" -untrusted "$l/line-ca.pem" "$l/$d.pem"
  check "line: $d: openssl verify (root + line CA, purpose sslclient)" 0 ': OK$'
  run openssl x509 -in "$l/$d.pem" -noout -subject -nameopt RFC2253
  check "line: $d: subject from --subject-template" 0 "^subject=O=Example,CN=$d\$"
  run hsmc key export-pub device-key --token "$tok" --pin-file "$dir/dev-pin"
  cp "$dir/out" "$l/$d.pub"
  openssl x509 -in "$l/$d.pem" -noout -pubkey > "$l/$d.certpub" 2>/dev/null || true
  if [ -s "$l/$d.pub" ]; then
    same "line: $d: the certificate is for the key in the device token" "$l/$d.pub" "$l/$d.certpub"
  else
    miss "line: $d: no device-key public key to compare with the certificate"
  fi
  pkcs11-tool --module "$MODULE" --token-label "$d" --login --pin 1357 -O > "$dir/out" 2> "$dir/err" || true
  if grep -A4 '^Private Key Object' "$dir/out" | grep -q 'never extractable, local'; then
    ok "line: $d: private key generated in the token, never extractable (pkcs11-tool)"
  else
    bad "line: $d: private key not local/never-extractable"
  fi
done
export HSMC_TOKEN='pkcs11:token=station' HSMC_PIN_FILE="$dir/line-pin"
run hsmc audit verify "$l/line.audit" --key line-audit
check "line: hsmc audit verify --key line-audit: 3 records" 0 'records: +3$'
# Independent check: the reader written from docs/FORMATS.md.
if [ -f "$src/test/tools/audit_check.py" ]; then
  hsmc key export-pub line-audit > "$l/audit.pub" 2>/dev/null || true
  run "$PY" "$src/test/tools/audit_check.py" verify "$l/audit.pub" "$l/line.audit"
  check "line: audit_check.py (not hsmc) verifies line.audit" 0 '^ok 3 '
fi
# Step 2's claim: running the batch again skips the finished devices.
prov=
while IFS= read -r -d '' cmd; do
  case "$cmd" in "hsmc provision "*) prov=$cmd ;; esac
done < "$dir/manufacturing-line.cmds"
if [ -n "$prov" ]; then
  set +e; (cd "$l" && eval "$prov") > "$dir/out" 2> "$dir/err" < /dev/null; rc=$?; set -e
  check "line: provision run again skips the finished devices" 0 'skipped 3, failed 0'
else
  bad "line: the guide has no hsmc provision command"
fi
# Step 3's claim: a broken trail is named, exit code 12.
if [ -s "$l/line.audit" ]; then
  "$PY" -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x01
open(sys.argv[2], "wb").write(b)' "$l/line.audit" "$l/broken.audit"
  run hsmc audit verify "$l/broken.audit" --key line-audit
  check "line: audit verify of an altered trail: exit 12, names the record" 12 '' 'record [0-9]+ at byte [0-9]+'
fi
unset HSMC_TOKEN HSMC_PIN_FILE

# ---- Firmware ------------------------------------------------------------------------
echo "# Firmware"
static_lib=$build/test/libhsmc_static_softhsm.a
if [ ! -f "$static_lib" ]; then
  bad "firmware: $static_lib not built (the static-port library with SoftHSM2 linked in)"
else
  # The snippet's first part (up to the first "}" line) is file scope: the
  # callback. The rest are statements: they go in main(), after fw/fw_len.
  "$PY" - "$dir/firmware.c.in" "$dir/fw/guide_fw.c" <<'PYEOF'
import sys
lines = open(sys.argv[1]).read().rstrip("\n").split("\n")
cut = lines.index("}") + 1
top, body = "\n".join(lines[:cut]), "\n".join("        " + l if l else l for l in lines[cut:])
open(sys.argv[2], "w").write("""/* README Firmware guide, step 2, wrapped to run on a host token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hsmc/hsmc.h>

/* Stand-in for the board's secure storage: the first line of $GUIDE_PIN_FILE. */
static int board_read_pin(char *buf, size_t cap, size_t *len)
{
    const char *path = getenv("GUIDE_PIN_FILE");
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    size_t k;

    if (f == NULL)
        return -1;
    k = fread(buf, 1, cap, f);
    fclose(f);
    while (k > 0 && (buf[k - 1] == '\\n' || buf[k - 1] == '\\r'))
        k--;
    *len = k;
    return k > 0 ? 0 : -1;
}

static uint8_t fw_image[65536];

%s

int main(int argc, char **argv)
{
    const uint8_t *fw = fw_image;
    size_t fw_len;
    FILE *f;

    if (argc != 3 || (f = fopen(argv[1], "rb")) == NULL)
        return 2;
    fw_len = fread(fw_image, 1, sizeof fw_image, f);
    fclose(f);
    {
%s
        /* The snippet ignores hsmc_sign's result: n is only read once the
           context is open and the key exists, and openssl checks the bytes. */
        fprintf(stderr, "guide_fw: last detail: %%s\\n", hsmc_detail(&h));
        if (hsmc_key_open(&h, "dev-sign", &key) != HSMC_OK || n != 64)
            return 1;
        f = fopen(argv[2], "wb");
        if (f == NULL || fwrite(sig, 1, n, f) != n)
            return 1;
        fclose(f);
        hsmc_close(&h);
    }
    return 0;
}
""" % (top, body))
PYEOF
  WARN="-std=c99 -Wall -Wextra -pedantic -Werror -Wmissing-prototypes -Wstrict-prototypes -Wshadow -Wformat=2 -Wvla"
  # A sanitizer build's library needs the sanitizer runtime in the program too.
  SAN=
  if grep -q '^HSMC_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
  fi
  # shellcheck disable=SC2086  # word splitting of the flags is intended
  run "$CC" $WARN $SAN -O2 -I"$src/include" -I"$src/config" -I/usr/include/p11-kit-1 \
    -o "$dir/fw/guide_fw" "$dir/fw/guide_fw.c" "$static_lib" "$MODULE" -Wl,-rpath,"$(dirname "$MODULE")" \
    -lmbedtls -lmbedx509 -lmbedcrypto -lpthread -ldl
  check "firmware: the C snippet compiles with the project's warning flags (static port, SoftHSM2 linked in)" 0
  if [ "$rc" = 0 ]; then
    # A device: one token, PIN in its "secure storage".
    softhsm_conf "$dir/fw"
    SOFTHSM2_CONF="$dir/fw/softhsm2.conf" new_token device 8642
    pin_file "$dir/fw/pin" 8642
    head -c 40000 /dev/urandom > "$dir/fw/fw.bin"
    for pass_no in 1 2; do   # 2nd run: the key exists, find_or_create finds it
      run env SOFTHSM2_CONF="$dir/fw/softhsm2.conf" GUIDE_PIN_FILE="$dir/fw/pin" \
        "$dir/fw/guide_fw" "$dir/fw/fw.bin" "$dir/fw/fw.sig$pass_no"
      check "firmware: snippet run $pass_no signs fw with dev-sign (64-byte r||s)" 0
    done
    run env SOFTHSM2_CONF="$dir/fw/softhsm2.conf" hsmc key export-pub dev-sign --token device --pin-file "$dir/fw/pin"
    cp "$dir/out" "$dir/fw/dev-sign.pem"
    check "firmware: hsmc key export-pub dev-sign" 0 'BEGIN PUBLIC KEY'
    run env SOFTHSM2_CONF="$dir/fw/softhsm2.conf" hsmc key list --token device --pin-file "$dir/fw/pin"
    check "firmware: one key dev-sign (p256) on the device token" 0 '^1 key$'
    for pass_no in 1 2; do
      # r||s -> DER ECDSA-Sig-Value for openssl.
      "$PY" -c '
import sys
raw = open(sys.argv[1], "rb").read()
def i(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
s = i(raw[:32]) + i(raw[32:])
open(sys.argv[2], "wb").write(b"\x30" + bytes([len(s)]) + s)' "$dir/fw/fw.sig$pass_no" "$dir/fw/fw.der$pass_no"
      run openssl dgst -sha256 -verify "$dir/fw/dev-sign.pem" -signature "$dir/fw/fw.der$pass_no" "$dir/fw/fw.bin"
      check "firmware: openssl verifies signature $pass_no over fw with the exported key" 0 'Verified OK'
    done
    printf 'x' >> "$dir/fw/fw.bin"
    run openssl dgst -sha256 -verify "$dir/fw/dev-sign.pem" -signature "$dir/fw/fw.der1" "$dir/fw/fw.bin"
    check "firmware: ... and not over other bytes" 1
  fi
fi

echo "# $(( ($(date +%s%N) - t0) / 1000000 )) ms"
summary
