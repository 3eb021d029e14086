#!/usr/bin/python3
"""Independent check of a certificate hsmc's CA issued (python cryptography).

usage: ca_check.py CERT.pem ISSUER.pem PROFILE PATHLEN [SPKI.der]
  PROFILE  ca_root | ca_intermediate | mtls_server | mtls_client | signing
  PATHLEN  expected pathLenConstraint for CA profiles, "none" for absent
  SPKI.der the subject key's SubjectPublicKeyInfo as the token exports it

Checks: v3; serial 16 bytes and positive; the signature verifies with the
issuer's key; AlgorithmIdentifiers (TBS and outer) equal, without
parameters for ECDSA and with NULL for RSA; exactly the profile's
extensions with the profile's criticality and values; SKI = SHA-1 of the
subjectPublicKey bits, AKI = the issuer's SKI; the SPKI bytes equal the
token's. Prints "ca_check OK" or the first problem, exit status 0/1.
"""
import sys

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID


def der_items(buf, pos, end):
    """Yield (tag, start, content_start, end) of the DER items in buf[pos:end]."""
    while pos < end:
        tag = buf[pos]
        n = buf[pos + 1]
        hdr = 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(buf[pos + 2:pos + 2 + k], "big")
            hdr += k
        yield tag, pos, pos + hdr, pos + hdr + n
        pos += hdr + n


def alg_ids(der):
    """The TBS signature AlgorithmIdentifier and the outer one, as bytes."""
    cert = list(der_items(der, 0, len(der)))[0]
    outer = list(der_items(der, cert[2], cert[3]))
    tbs = list(der_items(der, outer[0][2], outer[0][3]))
    i = 1 if tbs[0][0] == 0xA0 else 0
    inner_alg = tbs[i + 1]
    return der[inner_alg[1]:inner_alg[3]], der[outer[1][1]:outer[1][3]]


PROFILES = {
    "ca_root": (True, dict(key_cert_sign=True, crl_sign=True), None, False),
    "ca_intermediate": (True, dict(key_cert_sign=True, crl_sign=True), None, False),
    "mtls_server": (False, dict(digital_signature=True), ExtendedKeyUsageOID.SERVER_AUTH, True),
    "mtls_client": (False, dict(digital_signature=True), ExtendedKeyUsageOID.CLIENT_AUTH, None),
    "signing": (False, dict(digital_signature=True), ExtendedKeyUsageOID.CODE_SIGNING, None),
}
KU_FIELDS = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign"]


def fail(msg):
    print("ca_check FAIL:", msg)
    sys.exit(1)


def main():
    cert_path, issuer_path, profile, pathlen = sys.argv[1:5]
    spki_path = sys.argv[5] if len(sys.argv) > 5 else None
    cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
    issuer = x509.load_pem_x509_certificate(open(issuer_path, "rb").read())
    der = cert.public_bytes(serialization.Encoding.DER)
    is_ca, ku_want, eku, san_needed = PROFILES[profile]

    if cert.version != x509.Version.v3:
        fail("not v3")
    sn = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")
    if cert.serial_number <= 0 or len(sn) != 16:
        fail("serial is %d bytes in DER" % len(sn))
    if cert.issuer != issuer.subject:
        fail("issuer name is not the issuer's subject")

    ipub = issuer.public_key()
    if isinstance(ipub, ec.EllipticCurvePublicKey):
        ipub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    else:
        ipub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                    cert.signature_hash_algorithm)
    inner, outer = alg_ids(der)
    if inner != outer:
        fail("TBS and outer signature algorithms differ")
    has_params = len(list(der_items(inner, 2, len(inner)))) > 1
    if isinstance(ipub, ec.EllipticCurvePublicKey) == has_params:
        fail("AlgorithmIdentifier parameters wrong for the key type: %s" % inner.hex())

    exts = {e.oid: e for e in cert.extensions}
    want = {ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE,
            ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER}
    if eku is not None:
        want.add(ExtensionOID.EXTENDED_KEY_USAGE)
    if ExtensionOID.SUBJECT_ALTERNATIVE_NAME in exts:
        if is_ca:
            fail("CA certificate with a SAN")
        want.add(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    elif san_needed:
        fail("profile needs a SAN")
    if set(exts) != want:
        fail("extensions %s, want %s" % (sorted(o.dotted_string for o in exts),
                                         sorted(o.dotted_string for o in want)))

    bc = exts[ExtensionOID.BASIC_CONSTRAINTS]
    if not bc.critical or bc.value.ca != is_ca:
        fail("basicConstraints %s" % bc)
    want_pl = None if pathlen == "none" else int(pathlen)
    if bc.value.path_length != (want_pl if is_ca else None):
        fail("pathLen %s, want %s" % (bc.value.path_length, want_pl))
    ku = exts[ExtensionOID.KEY_USAGE]
    if not ku.critical:
        fail("keyUsage not critical")
    for f in KU_FIELDS:
        if getattr(ku.value, f) != ku_want.get(f, False):
            fail("keyUsage %s is %s" % (f, getattr(ku.value, f)))
    if eku is not None:
        e = exts[ExtensionOID.EXTENDED_KEY_USAGE]
        if e.critical or list(e.value) != [eku]:
            fail("extKeyUsage %s" % e)
    ski = exts[ExtensionOID.SUBJECT_KEY_IDENTIFIER]
    if ski.critical or ski.value.digest != x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest:
        fail("SKI is not SHA-1 of the key bits")
    aki = exts[ExtensionOID.AUTHORITY_KEY_IDENTIFIER]
    iski = issuer.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_KEY_IDENTIFIER).value.digest
    if aki.critical or aki.value.key_identifier != iski or aki.value.authority_cert_issuer is not None:
        fail("AKI is not the issuer's SKI")

    if spki_path is not None:
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        if spki != open(spki_path, "rb").read():
            fail("SubjectPublicKeyInfo differs from the token's")
        # and the bytes as they sit in the certificate
        if open(spki_path, "rb").read() not in der:
            fail("token SPKI bytes not found verbatim in the certificate")
    print("ca_check OK", profile, cert.serial_number.to_bytes(16, "big").hex())


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # a verification error is a failure, with its reason
        fail(repr(exc))
