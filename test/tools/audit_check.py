#!/usr/bin/python3
"""Independent checker of hsmc audit trails (python3-cbor2 +
python3-cryptography), written from docs/FORMATS.md ("Audit records") and
RFC 9052, not from hsmc's C code.

An audit file is a CBOR sequence (RFC 8742) of COSE_Sign1 records (tag 18)
signed by the audit key. Each payload is a map with integer keys; key 2
(prev) is the SHA-256 of the previous record's complete encoding (32 zero
bytes for the first) and key 1 (seq) counts from 0.

  audit_check.py verify SPKI FILE [FILE...]
      SPKI: the audit public key, SubjectPublicKeyInfo in PEM or DER.
      One line per FILE on stdout:
        ok COUNT NEXT_SEQ LAST_HASH_HEX
        FAIL INDEX OFFSET FAULT: reason
      FAULT is one of: malformed, truncated, bad signature, kid altered,
      prev mismatch, seq gap. Exit status 1 when any file fails.
  audit_check.py show FILE
      One line per record: seq, time, op, result, device, key (no checks
      beyond decoding).
"""
import hashlib
import io
import sys

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

TAG_SIGN1 = 18
CONTENT_TYPE = "application/hsmc-audit+cbor"
VERSION = 1
TEXT_KEYS = {4: "op", 5: "signer", 7: "result text", 8: "operator", 9: "role",
             10: "device id", 12: "key", 15: "ceremony"}
BYTES_KEYS = {2: "prev", 11: "key id", 13: "serial", 14: "fingerprint"}
REQUIRED = range(0, 8)
LAST_KEY = 15
PAYLOAD_MAX = 1024
RECORD_MAX = PAYLOAD_MAX + 768
SIGS = {-7: ("ec", hashes.SHA256), -35: ("ec", hashes.SHA384), -36: ("ec", hashes.SHA512),
        -37: ("pss", hashes.SHA256), -38: ("pss", hashes.SHA384), -39: ("pss", hashes.SHA512),
        -257: ("pkcs1", hashes.SHA256), -258: ("pkcs1", hashes.SHA384),
        -259: ("pkcs1", hashes.SHA512)}


class Broken(Exception):
    def __init__(self, fault, reason):
        super().__init__(reason)
        self.fault = fault
        self.reason = reason


def load_key(path):
    data = open(path, "rb").read()
    if data.lstrip().startswith(b"-----BEGIN"):
        return serialization.load_pem_public_key(data)
    return serialization.load_der_public_key(data)


def decode_exact(data, what):
    """Decode one CBOR item that must fill data exactly."""
    fp = io.BytesIO(data)
    try:
        obj = cbor2.CBORDecoder(fp).decode()
    except Exception as e:  # cbor2 raises several kinds
        raise Broken("malformed", "%s is not CBOR (%s)" % (what, e))
    if fp.tell() != len(data):
        raise Broken("malformed", "%s has bytes after its CBOR item" % what)
    return obj


def extent(data, start):
    """End of the CBOR item at data[start:], from its heads. No record is
    larger than RECORD_MAX: a declared size beyond it is malformed; an item
    that runs past the end of the file is truncated, unless the file had
    RECORD_MAX bytes left for it (then it is too large: malformed)."""
    pos, owed = start, 1
    rest = len(data) - start
    while owed:
        if pos >= len(data):
            break
        ib = data[pos]
        pos += 1
        mt, ai = ib >> 5, ib & 31
        if ai < 24:
            arg = ai
        elif ai <= 27:
            k = 1 << (ai - 24)
            if len(data) - pos < k:
                pos = len(data) + 1
                break
            arg = int.from_bytes(data[pos:pos + k], "big")
            pos += k
        else:
            raise Broken("malformed", "indefinite length or reserved head")
        owed -= 1
        if mt in (2, 3):
            if arg > RECORD_MAX:
                raise Broken("malformed", "a string of %d bytes in a record" % arg)
            pos += arg
        elif mt in (4, 5):
            if arg > RECORD_MAX:
                raise Broken("malformed", "a container of %d items in a record" % arg)
            owed += arg * (2 if mt == 5 else 1)
        elif mt == 6:
            owed += 1
        if owed > RECORD_MAX or pos - start > RECORD_MAX:
            raise Broken("malformed", "record larger than %d bytes" % RECORD_MAX)
    if owed or pos > len(data):
        if rest >= RECORD_MAX:
            raise Broken("malformed", "record larger than %d bytes" % RECORD_MAX)
        raise Broken("truncated", "the file ends inside the record (%d bytes of it)" % rest)
    return pos


def check_sig(key, alg, to_be_signed, sig):
    kind, hcls = SIGS[alg]
    try:
        if kind == "ec":
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise InvalidSignature()
            n = (key.curve.key_size + 7) // 8
            if len(sig) != 2 * n:
                raise InvalidSignature()
            der = utils.encode_dss_signature(int.from_bytes(sig[:n], "big"),
                                             int.from_bytes(sig[n:], "big"))
            key.verify(der, to_be_signed, ec.ECDSA(hcls()))
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                raise InvalidSignature()
            if kind == "pss":
                pad = padding.PSS(mgf=padding.MGF1(hcls()), salt_length=hcls.digest_size)
            else:
                pad = padding.PKCS1v15()
            key.verify(sig, to_be_signed, pad, hcls())
    except InvalidSignature:
        raise Broken("bad signature", "the signature does not verify with the audit key")


def check_payload(payload):
    if len(payload) > PAYLOAD_MAX:
        raise Broken("malformed", "payload larger than %d bytes" % PAYLOAD_MAX)
    m = decode_exact(payload, "the payload")
    if not isinstance(m, dict):
        raise Broken("malformed", "the payload is not a map")
    if cbor2.dumps(m, canonical=True) != payload:
        raise Broken("malformed", "the payload is not deterministic CBOR")
    for k, val in m.items():
        if not isinstance(k, int) or isinstance(k, bool) or k < 0 or k > LAST_KEY:
            raise Broken("malformed", "unknown payload key %r" % (k,))
        if k in TEXT_KEYS:
            if not isinstance(val, str) or not val or any(ord(c) < 0x20 or ord(c) == 0x7f
                                                          for c in val):
                raise Broken("malformed", "%s is not a non-empty printable text" % TEXT_KEYS[k])
        elif k in BYTES_KEYS:
            if not isinstance(val, bytes) or not val:
                raise Broken("malformed", "%s is not a non-empty byte string" % BYTES_KEYS[k])
            if k in (2, 14) and len(val) != 32:
                raise Broken("malformed", "%s is not 32 bytes" % BYTES_KEYS[k])
        elif isinstance(val, bool) or not isinstance(val, int):
            raise Broken("malformed", "key %d is not an integer" % k)
    for k in REQUIRED:
        if k not in m:
            raise Broken("malformed", "the payload has no key %d" % k)
    if m[0] != VERSION:
        raise Broken("malformed", "version %r" % m[0])
    if m[1] < 0 or m[3] < -1 or m[6] > 0:
        raise Broken("malformed", "seq, time or result out of range")
    return m


def check_record(key, item):
    if not isinstance(item, cbor2.CBORTag) or item.tag != TAG_SIGN1:
        raise Broken("malformed", "not a tagged COSE_Sign1")
    arr = item.value
    if not isinstance(arr, list) or len(arr) != 4:
        raise Broken("malformed", "a COSE_Sign1 is an array of 4")
    prot_b, unprot, payload, sig = arr
    if not isinstance(prot_b, bytes) or not isinstance(unprot, dict) or \
            not isinstance(payload, bytes) or not isinstance(sig, bytes):
        raise Broken("malformed", "COSE_Sign1 members have the wrong types")
    prot = decode_exact(prot_b, "the protected header") if prot_b else {}
    if not isinstance(prot, dict) or not isinstance(prot.get(1), int) or prot[1] not in SIGS:
        raise Broken("malformed", "no known signature alg in the protected header")
    if 2 in prot or 2 in unprot:
        raise Broken("malformed", "crit is not used by audit records")
    check_sig(key, prot[1], cbor2.dumps(["Signature1", prot_b, b"", payload]), sig)
    if prot.get(3) != CONTENT_TYPE:
        raise Broken("malformed", "content type is not " + CONTENT_TYPE)
    m = check_payload(payload)
    if unprot.get(4) != m[5].encode():
        raise Broken("kid altered", "the kid (unsigned) is not the signed signer %r" % m[5])
    return m


def verify(key, data):
    prev = bytes(32)
    seq = 0
    index = 0
    start = 0
    while start < len(data):
        try:
            end = extent(data, start)
            raw = data[start:end]
            item = decode_exact(raw, "the record")
            m = check_record(key, item)
            if m[2] != prev:
                raise Broken("prev mismatch", "prev is not the hash of the record before "
                             "(seq %d, expected %d)" % (m[1], seq))
            if m[1] != seq:
                raise Broken("seq gap", "seq %d, expected %d" % (m[1], seq))
        except Broken as b:
            return "FAIL %d %d %s: %s" % (index, start, b.fault, b.reason)
        prev = hashlib.sha256(raw).digest()
        seq += 1
        index += 1
        start = end
    return "ok %d %d %s" % (index, seq, prev.hex())


def show(data):
    fp = io.BytesIO(data)
    while fp.tell() < len(data):
        item = cbor2.CBORDecoder(fp).decode()
        m = cbor2.loads(item.value[2])
        print("%d %d %s %d %s %s" % (m[1], m[3], m[4], m[6], m.get(10, "-"), m.get(12, "-")))


def main(argv):
    if len(argv) >= 4 and argv[1] == "verify":
        key = load_key(argv[2])
        bad = 0
        for path in argv[3:]:
            line = verify(key, open(path, "rb").read())
            bad += line.startswith("FAIL")
            print(line)
        return 1 if bad else 0
    if len(argv) == 3 and argv[1] == "show":
        show(open(argv[2], "rb").read())
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
