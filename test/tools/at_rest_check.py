#!/usr/bin/python3
"""Independent checks of what samples/at_rest writes, built on
test/tools/cose_check.py (python3-cbor2 + python3-cryptography; written
from docs/FORMATS.md sections 3 and 5, not from hsmc's C code).

KEY is the KEK the test also put on the token: 64 hex digits (AES-256,
A256KW) or the path of a PEM RSA private key (RSA-OAEP). KID is the label
the envelopes must name (e.g. at-rest-kek-v0001).

  files  KEY KID DIR REFDIR  every DIR/NAME.cose: a stream with one recipient
                             KID, external AAD = NAME, decrypted and equal to
                             REFDIR/NAME                       -> ok N files
  record KEY KID FILE ID     a COSE_Encrypt with recipient KID and external
                             AAD "record:" + ID                -> the value (hex)
  hdrlen FILE                bytes of the first CBOR item (the stream header)
  kids   FILE...             the recipient kids of each envelope, one line each

One line on stdout; 'FAIL <reason>' and exit status 1 on a failed check.
"""
import io
import os
import sys

import cbor2
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cose_check as cc  # noqa: E402  (the shared COSE implementation)


def unwrapper(key):
    """cose_check's unwrapper for an AES KEK in hex or an RSA PEM file."""
    if os.path.isfile(key):
        return cc.oaep_unwrapper(serialization.load_pem_private_key(cc.rd(key), None))
    return cc.kw_unwrapper(bytes.fromhex(key))


def first_item(data):
    fp = io.BytesIO(data)
    obj = cbor2.CBORDecoder(fp).decode()
    return obj, fp.tell()


def files(a):
    key, kid, d, ref = a[0], a[1].encode(), a[2], a[3]
    unwrap = unwrapper(key)
    n = 0
    for name in sorted(os.listdir(d)):
        if name.startswith('.') or not name.endswith('.cose'):
            continue
        plain = name[:-len('.cose')]
        pt, _, v = cc.stream_open(cc.rd(os.path.join(d, name)), plain.encode(), kid, unwrap)
        cc.need(len(v[3]) == 1, '%s: %d recipients, want 1' % (name, len(v[3])))
        cc.need(pt == cc.rd(os.path.join(ref, plain)), '%s: plaintext differs from %s' %
                (name, os.path.join(ref, plain)))
        n += 1
    cc.need(n > 0, 'no envelope in ' + d)
    return 'ok %d files' % n


def record(a):
    key, kid, path, rid = a[0], a[1], a[2], a[3]
    aad = ('record:' + rid).encode().hex()
    v = cc.untag(cc.one_item(cc.rd(path), 'record'), cc.TAG_ENCRYPT, 'record')
    cc.need(len(v) == 4 and len(v[3]) == 1, 'record: want one recipient')
    if os.path.isfile(key):
        return cc.dec_oaep([key, path, aad, kid])
    return cc.dec_kw([key, path, aad, kid])


def hdrlen(a):
    _, n = first_item(cc.rd(a[0]))
    return str(n)


def kids(a):
    out = []
    for path in a:
        obj, _ = first_item(cc.rd(path))
        v = cc.untag(obj, cc.TAG_ENCRYPT, path)
        out.append(' '.join(r[1][cc.KID].decode() for r in v[3]))
    return '\n'.join(out)


OPS = {'files': files, 'record': record, 'hdrlen': hdrlen, 'kids': kids}


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in OPS:
        sys.exit('usage: at_rest_check.py ' + '|'.join(sorted(OPS)) + ' ...')
    try:
        print(OPS[sys.argv[1]](sys.argv[2:]))
    except (cc.Fail, ValueError, KeyError, IndexError, cbor2.CBORDecodeError) as e:
        print('FAIL %s: %s' % (type(e).__name__, e))
        sys.exit(1)


if __name__ == '__main__':
    main()
