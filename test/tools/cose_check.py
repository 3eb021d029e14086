#!/usr/bin/python3
"""Independent COSE implementation for hsmc's tests (python3-cbor2 +
python3-cryptography), written from RFC 9052/9053 and docs/FORMATS.md, not
from hsmc's C code.

It checks what hsmc writes (structure, deterministic encoding, header
contents, and the cryptography with keys the test also gave the token) and
writes COSE messages hsmc must accept, plus malformed variants hsmc must
refuse. Binary inputs and outputs are files; short values are hex on the
command line ('-' = empty). The result is one line on stdout: hex bytes,
'ok', or 'FAIL <reason>' (exit status 1).

  dec0      KEYHEX MSG AADHEX KID [CTHEX]            -> plaintext hex
  dec_kw    KEKHEX MSG AADHEX KID [CTHEX]            -> plaintext hex (A*KW recipient)
  dec_oaep  PRIVPEM MSG AADHEX KID [CTHEX]           -> plaintext hex (RSA-OAEP recipient)
  verify1   SPKIDER MSG AADHEX KID PAYLOAD|- [CTHEX] -> ok
  stream    KEKHEX STREAM AADHEX KID OUT [CTHEX]     -> sha256 hex of the plaintext (to OUT)
  stream_oaep PRIVPEM STREAM AADHEX KID OUT [CTHEX]  -> the same, RSA-OAEP recipient
  enc0      KEYHEX KID PTHEX AADHEX OUT [VARIANT]
  enc_kw    KEKHEX KID PTHEX AADHEX OUT [CTHEX]
  enc_oaep  SPKIDER KID ALG PTHEX AADHEX OUT (ALG -40 or -41)
  sign1     PRIVPEM KID ALG PAYLOAD AADHEX OUT DETACHED(0|1)
  stream_enc KEKHEX KID CHUNK IN AADHEX OUT [CTHEX]
  mkkey     KIND PEMOUT PKCS8OUT SPKIOUT     (KIND rsa2048, p256, p384)

Content type (label 3): CTHEX is the UTF-8 text of a media type in hex. The
readers then require exactly that text in the protected bucket (and no
label 3 anywhere when CTHEX is not given); the writers put it there.
"""
import hashlib
import io
import os
import sys

import cbor2
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TAG_ENCRYPT0, TAG_ENCRYPT, TAG_SIGN1 = 16, 96, 18
ALG, CRIT, CTYPE, KID, IV = 1, 2, 3, 4, 5
CHUNK_SIZE = -65537
GCM = {1: 16, 2: 24, 3: 32}
KW = {-3: 16, -4: 24, -5: 32}
SIGS = {-7: ('ec', hashes.SHA256, 32), -35: ('ec', hashes.SHA384, 48),
        -36: ('ec', hashes.SHA512, 66), -37: ('pss', hashes.SHA256, 0),
        -38: ('pss', hashes.SHA384, 0), -39: ('pss', hashes.SHA512, 0),
        -257: ('pkcs1', hashes.SHA256, 0), -258: ('pkcs1', hashes.SHA384, 0),
        -259: ('pkcs1', hashes.SHA512, 0), -8: ('ed', None, 0)}


class Fail(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Fail(what)


def unhex(s):
    return b'' if s == '-' else bytes.fromhex(s)


def hexs(b):
    return b.hex() if b else '-'


def rd(path):
    with open(path, 'rb') as f:
        return f.read()


def wr(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def canon(obj):
    return cbor2.dumps(obj, canonical=True)


def one_item(data, what):
    """Decode exactly one item; it must be deterministically encoded.
    (cbor2 5.4's canonical order is length-first; for the small integer
    labels COSE uses here that equals RFC 8949's bytewise order.)"""
    fp = io.BytesIO(data)
    obj = cbor2.CBORDecoder(fp).decode()
    need(fp.tell() == len(data), what + ': trailing bytes')
    need(canon(obj) == data, what + ': not deterministic CBOR')
    return obj


def items(data, what):
    """All items of an RFC 8742 CBOR sequence, with their encodings."""
    fp, out = io.BytesIO(data), []
    while fp.tell() < len(data):
        start = fp.tell()
        obj = cbor2.CBORDecoder(fp).decode()
        raw = data[start:fp.tell()]
        need(canon(obj) == raw, what + ': item %d not deterministic' % len(out))
        out.append((obj, raw))
    return out


def untag(obj, tag, what):
    need(isinstance(obj, cbor2.CBORTag) and obj.tag == tag, '%s: not tag %d' % (what, tag))
    need(isinstance(obj.value, list), what + ': not an array')
    return obj.value


def bytewise_keys(prot, what):
    """RFC 8949 §4.2.1 order of the protected map's keys: by their encoded
    bytes (not cbor2's length-first order, which differs for some keys)."""
    keys = [canon(k) for k in cbor2.loads(prot)]
    need(keys == sorted(keys), what + ': protected keys not in bytewise order')


def headers(prot, unprot, what):
    need(isinstance(prot, bytes), what + ': protected is not a bstr')
    p = one_item(prot, what + ' protected') if prot else {}
    need(isinstance(p, dict) and isinstance(unprot, dict), what + ': headers are not maps')
    need(not set(p) & set(unprot), what + ': a label in both buckets')
    if prot:
        bytewise_keys(prot, what)
    return p


def ctype_arg(a, i):
    """The expected content type: a[i] as hex of UTF-8 text, or None."""
    return unhex(a[i]).decode('utf-8') if len(a) > i and a[i] != '-' else None


def want_prot(base, ct):
    """The protected map hsmc must write: base plus 3: ct when given."""
    if ct is not None:
        base = dict(base)
        base[CTYPE] = ct
    return base


def enc_structure(context, prot, aad):
    return canon([context, prot, aad])


def gcm_open(key, iv, ct, aad, what):
    need(len(iv) == 12, what + ': IV is not 12 bytes')
    try:
        return AESGCM(key).decrypt(iv, ct, aad)
    except InvalidTag:
        raise Fail(what + ': AES-GCM tag mismatch')


# ---- checking what hsmc writes --------------------------------------------------

def dec0(a):
    key, msg, aad, kid = unhex(a[0]), rd(a[1]), unhex(a[2]), a[3].encode()
    v = untag(one_item(msg, 'Encrypt0'), TAG_ENCRYPT0, 'Encrypt0')
    need(len(v) == 3, 'Encrypt0: not 3 items')
    p = headers(v[0], v[1], 'Encrypt0')
    need(p == want_prot({ALG: {16: 1, 24: 2, 32: 3}[len(key)]}, ctype_arg(a, 4)),
         'Encrypt0: protected %r' % p)
    need(set(v[1]) == {KID, IV} and v[1][KID] == kid, 'Encrypt0: unprotected %r' % v[1])
    return hexs(gcm_open(key, v[1][IV], v[2], enc_structure('Encrypt0', v[0], aad), 'Encrypt0'))


def cose_encrypt(msg, what, stream=False, ct=None):
    v = untag(msg, TAG_ENCRYPT, what)
    need(len(v) == 4, what + ': not 4 items')
    p = headers(v[0], v[1], what)
    want = {ALG: 3, CRIT: [CHUNK_SIZE], CHUNK_SIZE: p.get(CHUNK_SIZE)} if stream else {ALG: 3}
    need(p == want_prot(want, ct), what + ': protected %r' % p)
    need(set(v[1]) == {IV} and len(v[1][IV]) == 12, what + ': unprotected %r' % v[1])
    need((v[2] is None) == stream, what + ': ciphertext presence')
    need(isinstance(v[3], list) and v[3], what + ': recipients')
    return v, p


def recipient(v, kid, algs, what):
    for r in v[3]:
        need(isinstance(r, list) and len(r) == 3, what + ': recipient shape')
        headers(r[0], r[1], what + ' recipient')
        need(r[0] == b'', what + ': recipient protected bucket is not empty')
        need(set(r[1]) == {ALG, KID}, what + ': recipient headers %r' % r[1])
        if r[1][KID] == kid:
            need(r[1][ALG] in algs, what + ': recipient alg %r' % r[1][ALG])
            return r[1][ALG], r[2]
    raise Fail(what + ': no recipient with kid %r' % kid)


def dec_kw(a):
    kek, msg, aad, kid = unhex(a[0]), rd(a[1]), unhex(a[2]), a[3].encode()
    v, _ = cose_encrypt(one_item(msg, 'Encrypt'), 'Encrypt', ct=ctype_arg(a, 4))
    alg, wrapped = recipient(v, kid, KW, 'Encrypt')
    need(KW[alg] == len(kek), 'Encrypt: KW alg does not fit the KEK')
    cek = keywrap.aes_key_unwrap(kek, wrapped)
    need(len(cek) == 32, 'Encrypt: CEK is not 32 bytes')
    return hexs(gcm_open(cek, v[1][IV], v[2], enc_structure('Encrypt', v[0], aad), 'Encrypt'))


def oaep(alg):
    h = hashes.SHA1() if alg == -40 else hashes.SHA256()
    return padding.OAEP(padding.MGF1(h), h, None)


def dec_oaep(a):
    key = serialization.load_pem_private_key(rd(a[0]), None)
    msg, aad, kid = rd(a[1]), unhex(a[2]), a[3].encode()
    v, _ = cose_encrypt(one_item(msg, 'Encrypt'), 'Encrypt', ct=ctype_arg(a, 4))
    alg, wrapped = recipient(v, kid, (-40, -41), 'Encrypt')
    cek = key.decrypt(wrapped, oaep(alg))
    need(len(cek) == 32, 'Encrypt: CEK is not 32 bytes')
    return hexs(gcm_open(cek, v[1][IV], v[2], enc_structure('Encrypt', v[0], aad), 'Encrypt'))


def sig_structure(prot, aad, payload):
    return canon(['Signature1', prot, aad, payload])


def verify1(a):
    pub = serialization.load_der_public_key(rd(a[0]))
    msg, aad, kid = rd(a[1]), unhex(a[2]), a[3].encode()
    v = untag(one_item(msg, 'Sign1'), TAG_SIGN1, 'Sign1')
    need(len(v) == 4, 'Sign1: not 4 items')
    p = headers(v[0], v[1], 'Sign1')
    need(p.get(ALG) in SIGS and p == want_prot({ALG: p.get(ALG)}, ctype_arg(a, 5)),
         'Sign1: protected %r' % p)
    need(v[1] == {KID: kid}, 'Sign1: unprotected %r' % v[1])
    if a[4] == '-':
        need(isinstance(v[2], bytes), 'Sign1: payload is not attached')
        payload = v[2]
    else:
        need(v[2] is None, 'Sign1: payload is not detached')
        payload = rd(a[4])
    kind, h, n = SIGS[p[ALG]]
    tbs, sig = sig_structure(v[0], aad, payload), v[3]
    try:
        if kind == 'ec':
            need(len(sig) == 2 * n, 'Sign1: ECDSA signature is not r||s of the curve')
            der = utils.encode_dss_signature(int.from_bytes(sig[:n], 'big'),
                                             int.from_bytes(sig[n:], 'big'))
            pub.verify(der, tbs, ec.ECDSA(h()))
        elif kind == 'pss':
            pub.verify(sig, tbs, padding.PSS(padding.MGF1(h()), h.digest_size), h())
        elif kind == 'ed':
            need(isinstance(pub, ed25519.Ed25519PublicKey), 'Sign1: EdDSA needs an Ed25519 key')
            pub.verify(sig, tbs)
        else:
            pub.verify(sig, tbs, padding.PKCS1v15(), h())
    except InvalidSignature:
        raise Fail('Sign1: signature does not verify')
    return 'ok'


def chunk_aad(bind, index, last):
    return canon(['hsmc chunk', bind, index, last])


def nonce(base, index):
    return base[:4] + bytes(x ^ y for x, y in zip(base[4:], index.to_bytes(8, 'big')))


def stream_bind(prot, base, aad):
    """bind = SHA-256(["hsmc stream", protected, base IV, external_aad]):
    the recipients are not covered (a re-wrap keeps every chunk valid)."""
    return hashlib.sha256(canon(['hsmc stream', prot, base, aad])).digest()


def kw_unwrapper(kek):
    def unwrap(alg, wrapped):
        need(KW[alg] == len(kek), 'stream: KW alg does not fit the KEK')
        return keywrap.aes_key_unwrap(kek, wrapped)
    return unwrap, KW


def oaep_unwrapper(key):
    return (lambda alg, wrapped: key.decrypt(wrapped, oaep(alg))), (-40, -41)


def stream_open(data, aad, kid, unwrapper, ct=None):
    """Plaintext of an hsmc stream (bytes), every check of FORMATS.md §5
    applied; unwrapper is kw_unwrapper(kek) or oaep_unwrapper(private key).
    Returns (plaintext, header item bytes, header value list)."""
    seq = items(data, 'stream')
    need(seq, 'stream: empty')
    (hdr, hdr_raw), chunks = seq[0], seq[1:]
    v, p = cose_encrypt(hdr, 'stream header', stream=True, ct=ct)
    size = p[CHUNK_SIZE]
    need(isinstance(size, int) and 1 <= size <= 1 << 30, 'stream: chunk size')
    unwrap, algs = unwrapper
    alg, wrapped = recipient(v, kid, algs, 'stream header')
    cek = unwrap(alg, wrapped)
    need(len(cek) == 32, 'stream: CEK is not 32 bytes')
    base = v[1][IV]
    bind = stream_bind(v[0], base, aad)
    out = []
    for i, (c, _) in enumerate(chunks):
        need(isinstance(c, list) and len(c) == 3, 'stream: chunk %d shape' % i)
        need(c[0] == base[:8] and c[1] == i, 'stream: chunk %d id/index' % i)
        ptlen = len(c[2]) - 16
        need(0 <= ptlen <= size, 'stream: chunk %d length' % i)
        last = ptlen < size
        need(last == (i == len(chunks) - 1), 'stream: chunk %d last flag' % i)
        out.append(gcm_open(cek, nonce(base, i), c[2], chunk_aad(bind, i, last), 'chunk %d' % i))
    need(chunks, 'stream: no chunk')
    return b''.join(out), hdr_raw, v


def stream(a):
    kek, data, aad, kid = unhex(a[0]), rd(a[1]), unhex(a[2]), a[3].encode()
    pt, _, _ = stream_open(data, aad, kid, kw_unwrapper(kek), ctype_arg(a, 5))
    wr(a[4], pt)
    return hashlib.sha256(pt).hexdigest()


def stream_oaep(a):
    key = serialization.load_pem_private_key(rd(a[0]), None)
    data, aad, kid = rd(a[1]), unhex(a[2]), a[3].encode()
    pt, _, _ = stream_open(data, aad, kid, oaep_unwrapper(key), ctype_arg(a, 5))
    wr(a[4], pt)
    return hashlib.sha256(pt).hexdigest()


# ---- writing what hsmc must read -----------------------------------------------

def enc0(a):
    key, kid, pt, aad, out = unhex(a[0]), a[1].encode(), unhex(a[2]), unhex(a[3]), a[4]
    variant = a[5] if len(a) > 5 else 'plain'
    alg = {16: 1, 24: 2, 32: 3}[len(key)]
    iv = os.urandom(12)
    prot = {ALG: alg}
    unprot = {KID: kid, IV: iv}
    if variant == 'both_buckets':
        unprot[ALG] = alg
    elif variant == 'crit_unknown':
        prot = {ALG: alg, CRIT: [99], 99: 1}
    elif variant == 'crit_unprot':
        unprot[CRIT] = [ALG]
    elif variant == 'crit_empty':
        prot = {ALG: alg, CRIT: []}
    elif variant == 'crit_ok':
        prot = {ALG: alg, CRIT: [ALG]}
    elif variant == 'crit_not_protected':
        prot = {ALG: alg, CRIT: [KID]}
    elif variant == 'crit_text':
        prot = {ALG: alg, CRIT: ['x'], 'x': 1}
    elif variant == 'unknown_alg':
        prot = {ALG: 99}
    elif variant == 'alg_text':
        prot = {ALG: 'A256GCM'}
    elif variant == 'alg_unprot':
        prot = {}
        unprot[ALG] = alg
    elif variant == 'iv11':
        iv = os.urandom(11)
        unprot[IV] = iv
    elif variant == 'partial_iv':
        unprot[6] = b'\x01'
    elif variant == 'extra_label':
        unprot[99] = 'ignored'
        unprot['note'] = [1, 2]
        prot = {ALG: alg, 77: b'x'}
    elif variant == 'kid_text':
        unprot[KID] = kid.decode()
    elif variant == 'deep':
        unprot[99] = [[[[[[[[[[1]]]]]]]]]]
    elif variant == 'ctype':
        prot = {ALG: alg, CTYPE: 'application/json'}
    elif variant == 'ctype_uint':
        prot = {ALG: alg, CTYPE: 50}
    elif variant == 'ctype_crit':
        prot = {ALG: alg, CRIT: [CTYPE], CTYPE: 'text/plain; charset=utf-8'}
    elif variant == 'ctype_unprot':
        unprot[CTYPE] = 'text/plain'
    elif variant == 'ctype_both':
        prot = {ALG: alg, CTYPE: 'text/plain'}
        unprot[CTYPE] = 'text/plain'
    elif variant == 'ctype_bstr':
        prot = {ALG: alg, CTYPE: b'text/plain'}
    elif variant == 'ctype_nint':
        prot = {ALG: alg, CTYPE: -1}
    elif variant == 'ctype_big':
        prot = {ALG: alg, CTYPE: 65536}
    elif variant == 'ctype_empty':
        prot = {ALG: alg, CTYPE: ''}
    elif variant == 'ctype_array':
        prot = {ALG: alg, CTYPE: ['text/plain']}
    pb = canon(prot) if prot else b''
    if variant == 'dup_key':
        pb = bytes([0xa2, 0x01, alg, 0x01, alg])
    elif variant == 'prot_not_map':
        pb = b'\x01'
    elif variant == 'prot_two_items':
        pb = canon(prot) + b'\x00'
    elif variant == 'prot_a0_alg_unprot':
        pb = b'\xa0'
        unprot[ALG] = alg
    elif variant == 'ctype_bad_utf8':
        pb = bytes([0xa2, 0x01, alg, 0x03, 0x62, 0xc3, 0x28])  # {1: alg, 3: <invalid text>}
    ct = AESGCM(key).encrypt(iv, pt, enc_structure('Encrypt0', pb, aad))
    body = [pb, unprot, ct]
    if variant == 'untagged':
        msg = canon(body)
    elif variant == 'tag18':
        msg = canon(cbor2.CBORTag(18, body))
    elif variant == 'nested_tag':
        msg = canon(cbor2.CBORTag(16, cbor2.CBORTag(16, body)))
    else:
        msg = canon(cbor2.CBORTag(TAG_ENCRYPT0, body))
    if variant == 'trailing':
        msg += b'\x00'
    elif variant == 'indef':
        need(msg[1] == 0x83, 'unexpected head')
        msg = msg[:1] + b'\x9f' + msg[2:] + b'\xff'
    elif variant == 'nonshortest':
        msg = msg[:1] + b'\x98\x03' + msg[2:]
    wr(out, msg)
    return 'ok'


def envelope(pt, aad, recipients, ct=None):
    cek, iv = os.urandom(32), os.urandom(12)
    pb = canon(want_prot({ALG: 3}, ct))
    ct = AESGCM(cek).encrypt(iv, pt, enc_structure('Encrypt', pb, aad))
    return cbor2.CBORTag(TAG_ENCRYPT, [pb, {IV: iv}, ct, [r(cek) for r in recipients]])


def enc_kw(a):
    kek, kid, pt, aad, out = unhex(a[0]), a[1].encode(), unhex(a[2]), unhex(a[3]), a[4]
    alg = {16: -3, 24: -4, 32: -5}[len(kek)]
    r = lambda cek: [b'', {ALG: alg, KID: kid}, keywrap.aes_key_wrap(kek, cek)]
    wr(out, canon(envelope(pt, aad, [r], ctype_arg(a, 5))))
    return 'ok'


def enc_oaep(a):
    pub = serialization.load_der_public_key(rd(a[0]))
    kid, alg, pt, aad, out = a[1].encode(), int(a[2]), unhex(a[3]), unhex(a[4]), a[5]
    r = lambda cek: [b'', {ALG: alg, KID: kid}, pub.encrypt(cek, oaep(alg))]
    wr(out, canon(envelope(pt, aad, [r])))
    return 'ok'


def sign1(a):
    key = serialization.load_pem_private_key(rd(a[0]), None)
    kid, alg, payload, aad, out = a[1].encode(), int(a[2]), rd(a[3]), unhex(a[4]), a[5]
    detached = a[6] == '1'
    kind, h, n = SIGS[alg]
    pb = canon({ALG: alg})
    tbs = sig_structure(pb, aad, payload)
    if kind == 'ec':
        r, s = utils.decode_dss_signature(key.sign(tbs, ec.ECDSA(h())))
        sig = r.to_bytes(n, 'big') + s.to_bytes(n, 'big')
    elif kind == 'pss':
        sig = key.sign(tbs, padding.PSS(padding.MGF1(h()), h.digest_size), h())
    elif kind == 'ed':
        sig = key.sign(tbs)
    else:
        sig = key.sign(tbs, padding.PKCS1v15(), h())
    msg = cbor2.CBORTag(TAG_SIGN1, [pb, {KID: kid}, None if detached else payload, sig])
    wr(out, canon(msg))
    return 'ok'


def stream_enc(a):
    kek, kid, size, data, aad, out = (unhex(a[0]), a[1].encode(), int(a[2]), rd(a[3]),
                                      unhex(a[4]), a[5])
    cek, base = os.urandom(32), os.urandom(12)
    pb = canon(want_prot({ALG: 3, CRIT: [CHUNK_SIZE], CHUNK_SIZE: size}, ctype_arg(a, 6)))
    hdr = canon(cbor2.CBORTag(TAG_ENCRYPT, [pb, {IV: base}, None,
                                            [[b'', {ALG: -5, KID: kid},
                                              keywrap.aes_key_wrap(kek, cek)]]]))
    bind = stream_bind(pb, base, aad)
    full = len(data) // size
    parts = [data[i * size:(i + 1) * size] for i in range(full)] + [data[full * size:]]
    res = [hdr]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        ct = AESGCM(cek).encrypt(nonce(base, i), part, chunk_aad(bind, i, last))
        res.append(canon([base[:8], i, ct]))
    wr(out, b''.join(res))
    return 'ok'


def mkkey(a):
    kind, pem_out, der_out, spki_out = a
    if kind == 'rsa2048':
        key = rsa.generate_private_key(65537, 2048)
    else:
        key = ec.generate_private_key({'p256': ec.SECP256R1(), 'p384': ec.SECP384R1()}[kind])
    wr(pem_out, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    wr(der_out, key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    wr(spki_out, key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    return 'ok'


OPS = {'dec0': dec0, 'dec_kw': dec_kw, 'dec_oaep': dec_oaep, 'verify1': verify1,
       'stream': stream, 'stream_oaep': stream_oaep, 'enc0': enc0, 'enc_kw': enc_kw,
       'enc_oaep': enc_oaep, 'sign1': sign1, 'stream_enc': stream_enc, 'mkkey': mkkey}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in OPS:
        sys.exit('usage: cose_check.py ' + '|'.join(sorted(OPS)) + ' ...')
    try:
        print(OPS[sys.argv[1]](sys.argv[2:]))
    except (Fail, ValueError, KeyError, IndexError, cbor2.CBORDecodeError) as e:
        print('FAIL %s: %s' % (type(e).__name__, e))
        sys.exit(1)


if __name__ == '__main__':
    main()
