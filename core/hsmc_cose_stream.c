/*
 * The hsmc stream (docs/FORMATS.md): an RFC 8742 CBOR sequence of a
 * COSE_Encrypt header with nil ciphertext, then chunks
 *   [stream id (first 8 bytes of the base IV), index, ciphertext||tag]
 * sealed with AES-256-GCM under the header's content key, nonce = base IV
 * XOR index (big-endian, last 8 bytes), AAD = ["hsmc chunk", bind, index,
 * last] where bind = SHA-256(["hsmc stream", protected bucket, base IV,
 * external AAD]) — not the recipients, which a key rotation may replace.
 * Full chunks carry exactly the chunk size; the last carries less (maybe
 * nothing), so a reader knows which chunk is last from its length and the
 * flag in the AAD makes that authenticated.
 *
 * The clear id and index let a reader tell a chunk of another stream, a
 * missing, repeated or reordered chunk (HSMC_ERR_SEQUENCE) from an altered
 * one (HSMC_ERR_DECRYPT); both are also bound by the nonce and the AAD, so
 * changing them only turns the chunk into an altered one. A stream that
 * ends without its short chunk is HSMC_ERR_TRUNCATED.
 *
 * RAM: this state (GCM keyed once) plus the caller's chunk buffers.
 */
#include <string.h>

#include "hsmc_cose_int.h"

#define HSMC_STREAM_IDLE 0
#define HSMC_STREAM_SEALING 1
#define HSMC_STREAM_OPENING 2
#define HSMC_STREAM_ENDED 3

/* Worst-case CBOR head of a chunk item's parts. */
#define HSMC_STREAM_ITEM_OVERHEAD (1u + 1u + HSMC_COSE_SID_LEN + 9u + 9u)

void hsmc_cose_stream_init(hsmc_cose_stream_t *s, hsmc_t *h)
{
    if (s == NULL)
        return;
    memset(s, 0, sizeof *s);
    hsmc_cose_init(&s->cose, h);
}

void hsmc_cose_stream_free(hsmc_cose_stream_t *s)
{
    if (s == NULL)
        return;
    hsmc_cose_free(&s->cose);
    hsmc__wipe(s, sizeof *s);
}

size_t hsmc_cose_stream_item_max(const hsmc_cose_stream_t *s)
{
    if (s == NULL || s->mode == HSMC_STREAM_IDLE)
        return 0;
    return s->chunk + HSMC_GCM_TAG_LEN + HSMC_STREAM_ITEM_OVERHEAD;
}

/* A failure that ends the stream: the key goes, later calls repeat err. */
static hsmc_err_t hsmc_stream_fail(hsmc_cose_stream_t *s, hsmc_err_t err)
{
    s->err = err;
    hsmc__cose_crypto_release(&s->cose);
    hsmc__wipe(s->cose.cek, sizeof s->cose.cek);
    return err;
}

/* Common entry checks: a stream (NULL: HSMC_ERR_ARG without a detail),
 * the sticky error, the mode. */
static hsmc_err_t hsmc_stream_state(hsmc_cose_stream_t *s, const char *fn, int mode)
{
    if (s == NULL)
        return HSMC_ERR_ARG;
    if (s->err != HSMC_OK)
        return hsmc__fail(s->cose.h, s->err, CKR_OK,
                          "%s: the stream already failed (%s); start a new one", fn,
                          hsmc_err_name(s->err));
    if (s->mode != mode)
        return hsmc__fail(s->cose.h, HSMC_ERR_STATE, CKR_OK,
                          "%s: the stream is %s", fn,
                          s->mode == HSMC_STREAM_IDLE      ? "not started"
                          : s->mode == HSMC_STREAM_SEALING ? "sealing"
                          : s->mode == HSMC_STREAM_OPENING ? "opening"
                                                           : "ended");
    return HSMC_OK;
}

/*
 * bind = SHA-256(["hsmc stream", protected, base IV, external aad]): the
 * header's protected bucket (alg, chunk size, content type) and base IV,
 * not its recipients, so the CEK can be re-wrapped for a new KEK
 * (hsmc_cose_rewrap) without re-sealing a single chunk.
 */
HSMC_NOINLINE static hsmc_err_t hsmc_stream_bind(hsmc_cose_stream_t *s, const char *fn,
                                                 const uint8_t *prot, size_t prot_len,
                                                 const uint8_t iv[HSMC_GCM_IV_LEN],
                                                 hsmc_view_t aad)
{
    hsmc_cose_t *c = &s->cose;
    hsmc_view_t iv_view;
    hsmc_cbor_enc_t e;
    size_t n = 0;
    hsmc_err_t err;

    err = hsmc__cose_sha256_start(c);
    hsmc_cbor_enc_init(&e, c->scratch, sizeof c->scratch);
    (void)hsmc_cbor_put_array(&e, 4);
    (void)hsmc_cbor_put_tstr(&e, "hsmc stream", 11);
    (void)hsmc_cbor_put_bstr_header(&e, prot_len);
    if (err == HSMC_OK)
        err = hsmc_cbor_enc_finish(&e, &n);
    if (err == HSMC_OK)
        err = hsmc__cose_sha_update(c, c->scratch, n);
    if (err == HSMC_OK)
        err = hsmc__cose_sha_update(c, prot, prot_len);
    hsmc_cbor_enc_init(&e, c->scratch, sizeof c->scratch);
    (void)hsmc_cbor_put_bstr_header(&e, HSMC_GCM_IV_LEN);
    if (err == HSMC_OK)
        err = hsmc_cbor_enc_finish(&e, &n);
    iv_view.ptr = iv;
    iv_view.len = HSMC_GCM_IV_LEN;
    err = hsmc__cose_sha_tail(c, err, n, &iv_view, &aad, s->bind);
    if (err != HSMC_OK)
        return hsmc__fail(c->h, err, CKR_OK, "%s: hashing the stream header failed", fn);
    return HSMC_OK;
}

/* The protected bucket of the header item hsmc just wrote. */
static hsmc_err_t hsmc_stream_own_prot(hsmc_cose_stream_t *s, const uint8_t *hdr, size_t len,
                                       const uint8_t **prot, size_t *prot_len)
{
    hsmc_cbor_dec_t *d = &s->cose.dec;
    uint64_t tag = 0;
    size_t n = 0;

    hsmc_cbor_dec_init(d, hdr, len);
    if (hsmc_cbor_get_tag(d, &tag) != HSMC_OK || hsmc_cbor_get_array(d, &n) != HSMC_OK ||
        hsmc_cbor_get_bstr(d, prot, prot_len) != HSMC_OK)
        return HSMC_ERR_INTERNAL;
    return HSMC_OK;
}

/* Key the stream's GCM with the CEK in s->cose.cek, then wipe that copy. */
static hsmc_err_t hsmc_stream_key(hsmc_cose_stream_t *s, const char *fn, size_t cek_len)
{
    hsmc_err_t err = hsmc__cose_gcm_key(&s->cose, s->cose.cek, cek_len);

    hsmc__wipe(s->cose.cek, sizeof s->cose.cek);
    if (err != HSMC_OK)
        return hsmc__fail(s->cose.h, err, CKR_OK, "%s: mbedTLS cannot set up AES-GCM", fn);
    return HSMC_OK;
}

/* Chunk AAD ["hsmc chunk", bind, index, last] into the scratch; and the
 * nonce: base IV with the index XORed into its last 8 bytes. */
static size_t hsmc_stream_aad(hsmc_cose_stream_t *s, uint64_t index, int last,
                              uint8_t nonce[HSMC_GCM_IV_LEN])
{
    hsmc_cbor_enc_t e;
    size_t n = 0, k;

    hsmc_cbor_enc_init(&e, s->cose.scratch, sizeof s->cose.scratch);
    (void)hsmc_cbor_put_array(&e, 4);
    (void)hsmc_cbor_put_tstr(&e, "hsmc chunk", 10);
    (void)hsmc_cbor_put_bstr(&e, s->bind, sizeof s->bind);
    (void)hsmc_cbor_put_uint(&e, index);
    (void)hsmc_cbor_put_bool(&e, last != 0);
    (void)hsmc_cbor_enc_finish(&e, &n); /* about 60 bytes: always fits */
    memcpy(nonce, s->iv, HSMC_GCM_IV_LEN);
    for (k = 0; k < 8; k++)
        nonce[HSMC_GCM_IV_LEN - 1u - k] ^= (uint8_t)(index >> (8u * k));
    return n;
}

/* ---- Sealing ------------------------------------------------------------------ */

hsmc_err_t hsmc_cose_stream_seal_init(hsmc_cose_stream_t *s, const hsmc_cose_recipient_t *r,
                                      size_t n, size_t chunk_size, hsmc_view_t aad, uint8_t *out,
                                      size_t cap, size_t *out_len)
{
    static const char fn[] = "hsmc_cose_stream_seal_init";
    hsmc_view_t none = {NULL, 0};
    const uint8_t *prot = NULL;
    size_t prot_len = 0;
    hsmc_err_t err;

    err = hsmc_stream_state(s, fn, HSMC_STREAM_IDLE);
    if (err != HSMC_OK)
        return err;
    if (chunk_size == 0 || chunk_size > HSMC_COSE_CHUNK_MAX || !HSMC_VIEW_OK(aad))
        return hsmc__fail(s->cose.h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the chunk size must be 1..%lu bytes, and aad bytes given for a "
                          "non-zero length",
                          fn, (unsigned long)HSMC_COSE_CHUNK_MAX);
    err = hsmc__cose_write_encrypt(&s->cose, fn, r, n, chunk_size, aad, none, out, cap, out_len,
                                   s->iv);
    if (err != HSMC_OK || out == NULL)
        return err;
    err = hsmc_stream_own_prot(s, out, *out_len, &prot, &prot_len);
    if (err == HSMC_OK)
        err = hsmc_stream_bind(s, fn, prot, prot_len, s->iv, aad);
    if (err == HSMC_OK)
        err = hsmc_stream_key(s, fn, 32u);
    if (err != HSMC_OK) {
        hsmc__wipe(s->cose.cek, sizeof s->cose.cek);
        hsmc__wipe(out, cap);
        return err;
    }
    s->chunk = chunk_size;
    s->next = 0;
    s->mode = HSMC_STREAM_SEALING;
    return HSMC_OK;
}

/* One chunk item [sid, index, GCM(pt)] of len plaintext bytes. */
HSMC_NOINLINE static hsmc_err_t hsmc_stream_seal(hsmc_cose_stream_t *s, const char *fn,
                                                 const uint8_t *pt, size_t len, int last,
                                                 uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t nonce[HSMC_GCM_IV_LEN];
    hsmc_cbor_enc_t e;
    size_t need = 0, alen;
    uint8_t *p;
    hsmc_err_t err;

    if (s->next == UINT64_MAX)
        return hsmc__fail(s->cose.h, HSMC_ERR_LIMIT, CKR_OK, "%s: the stream has 2^64 chunks",
                          fn);
    hsmc_cbor_enc_init(&e, out, cap);
    (void)hsmc_cbor_put_array(&e, 3);
    (void)hsmc_cbor_put_bstr(&e, s->iv, HSMC_COSE_SID_LEN);
    (void)hsmc_cbor_put_uint(&e, s->next);
    p = hsmc__cose_reserve_bstr(&e, len + HSMC_GCM_TAG_LEN);
    err = hsmc_cbor_enc_finish(&e, &need);
    *out_len = need;
    if (out == NULL)
        return HSMC_OK;
    if (err != HSMC_OK || p == NULL)
        return hsmc__fail(s->cose.h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: the chunk item takes %lu bytes; the buffer has %lu", fn,
                          (unsigned long)need, (unsigned long)cap);
    alen = hsmc_stream_aad(s, s->next, last, nonce);
    err = hsmc__cose_gcm_seal(&s->cose, nonce, s->cose.scratch, alen, pt, len, p);
    if (err != HSMC_OK) {
        hsmc__wipe(out, need);
        return hsmc__fail(s->cose.h, err, CKR_OK, "%s: software AES-GCM failed", fn);
    }
    s->next++;
    return HSMC_OK;
}

hsmc_err_t hsmc_cose_stream_seal_chunk(hsmc_cose_stream_t *s, const uint8_t *pt, size_t len,
                                       uint8_t *out, size_t cap, size_t *out_len)
{
    static const char fn[] = "hsmc_cose_stream_seal_chunk";
    hsmc_err_t err;

    err = hsmc_stream_state(s, fn, HSMC_STREAM_SEALING);
    if (err != HSMC_OK)
        return err;
    if (pt == NULL || out_len == NULL || len != s->chunk)
        return hsmc__fail(s->cose.h, HSMC_ERR_ARG, CKR_OK,
                          "%s: a full chunk is exactly %lu bytes (got %lu); seal the shorter "
                          "rest with hsmc_cose_stream_seal_finish",
                          fn, (unsigned long)s->chunk, (unsigned long)len);
    return hsmc_stream_seal(s, fn, pt, len, 0, out, cap, out_len);
}

hsmc_err_t hsmc_cose_stream_seal_finish(hsmc_cose_stream_t *s, const uint8_t *pt, size_t len,
                                        uint8_t *out, size_t cap, size_t *out_len)
{
    static const char fn[] = "hsmc_cose_stream_seal_finish";
    hsmc_err_t err;

    err = hsmc_stream_state(s, fn, HSMC_STREAM_SEALING);
    if (err != HSMC_OK)
        return err;
    if ((pt == NULL && len > 0) || out_len == NULL || len >= s->chunk)
        return hsmc__fail(s->cose.h, HSMC_ERR_ARG, CKR_OK,
                          "%s: the last chunk holds 0..%lu bytes (got %lu); seal a full chunk "
                          "with hsmc_cose_stream_seal_chunk first",
                          fn, (unsigned long)(s->chunk - 1u), (unsigned long)len);
    err = hsmc_stream_seal(s, fn, pt, len, 1, out, cap, out_len);
    if (err == HSMC_OK && out != NULL) {
        s->mode = HSMC_STREAM_ENDED;
        hsmc__cose_crypto_release(&s->cose);
    }
    return err;
}

/* ---- Opening ------------------------------------------------------------------ */

hsmc_err_t hsmc_cose_stream_open_init(hsmc_cose_stream_t *s, const uint8_t *in, size_t len,
                                      size_t *used, hsmc_view_t aad, size_t max_chunk,
                                      unsigned flags, hsmc_cose_info_t *info)
{
    static const char fn[] = "hsmc_cose_stream_open_init";
    hsmc_cose_t *c;
    hsmc_cose_hdrs_t hd;
    hsmc_view_t ct;
    const uint8_t *item = NULL;
    size_t hl = 0, cek_len = 0;
    hsmc_err_t err;

    err = hsmc_stream_state(s, fn, HSMC_STREAM_IDLE);
    if (err != HSMC_OK)
        return err;
    c = &s->cose;
    if (in == NULL || used == NULL || !HSMC_VIEW_OK(aad) || max_chunk == 0)
        return hsmc__fail(c->h, HSMC_ERR_ARG, CKR_OK,
                          "%s: in, used and max_chunk must be given, and aad bytes for a "
                          "non-zero length",
                          fn);
    hsmc__cose_info_reset(info);
    if (len == 0)
        return hsmc__fail(c->h, HSMC_ERR_TRUNCATED, CKR_OK, "%s: the stream is empty", fn);
    /* The header is the first item; chunks may follow it in `in`. */
    hsmc_cbor_dec_init(&c->dec, in, len);
    if (hsmc_cbor_get_raw(&c->dec, &item, &hl) != HSMC_OK)
        return hsmc__cose_dec_fail(c, fn, &c->dec);
    err = hsmc__cose_open_encrypt(c, fn, in, hl, flags, 1, 1, &hd, &ct, &cek_len, info);
    if (err != HSMC_OK)
        return err;
    if (hd.chunk > max_chunk)
        return hsmc__fail(c->h, HSMC_ERR_LIMIT, CKR_OK,
                          "%s: the stream's chunks hold %lu bytes; this reader takes at most %lu",
                          fn, (unsigned long)hd.chunk, (unsigned long)max_chunk);
    err = hsmc__cose_open_encrypt(c, fn, in, hl, flags, 1, 0, &hd, &ct, &cek_len, info);
    if (err == HSMC_OK)
        err = hsmc_stream_bind(s, fn, hd.prot, hd.prot_len, hd.iv, aad);
    if (err == HSMC_OK)
        err = hsmc_stream_key(s, fn, cek_len);
    hsmc__wipe(c->cek, sizeof c->cek);
    hsmc__wipe(&c->key, sizeof c->key);
    if (err != HSMC_OK) {
        hsmc__cose_crypto_release(c);
        return err;
    }
    memcpy(s->iv, hd.iv, HSMC_GCM_IV_LEN);
    s->chunk = (size_t)hd.chunk;
    s->next = 0;
    s->mode = HSMC_STREAM_OPENING;
    *used = hl;
    return HSMC_OK;
}

/* A CBOR head at p[0..avail): 1 read, 0 more bytes needed, -1 malformed. */
static int hsmc_stream_head(const uint8_t *p, size_t avail, unsigned *major, uint64_t *arg,
                            size_t *hl)
{
    unsigned ai;
    size_t k, i;

    if (avail < 1)
        return 0;
    *major = p[0] >> 5;
    ai = p[0] & 31u;
    if (ai < 24) {
        *arg = ai;
        *hl = 1;
        return 1;
    }
    if (ai > 27)
        return -1;
    k = (size_t)1 << (ai - 24);
    if (avail < 1 + k)
        return 0;
    *arg = 0;
    for (i = 0; i < k; i++)
        *arg = (*arg << 8) | p[1 + i];
    *hl = 1 + k;
    return 1;
}

/*
 * Size of the chunk item at in[0..len) from its heads. @return HSMC_OK,
 * HSMC_ERR_TRUNCATED (the input ends inside it) or HSMC_ERR_FORMAT (not a
 * chunk item, or a ciphertext longer than a full chunk).
 */
static hsmc_err_t hsmc_stream_item_len(const hsmc_cose_stream_t *s, const uint8_t *in,
                                       size_t len, size_t *total)
{
    unsigned major = 0;
    uint64_t arg = 0;
    size_t off = 0, hl = 0;
    int step, r;

    for (step = 0; step < 4; step++) {
        r = hsmc_stream_head(in + off, len - off, &major, &arg, &hl);
        if (r == 0)
            return HSMC_ERR_TRUNCATED;
        if (r < 0)
            return HSMC_ERR_FORMAT;
        off += hl;
        if ((step == 0 && (major != 4u || arg != 3u)) ||
            (step == 1 && (major != 2u || arg != HSMC_COSE_SID_LEN)) ||
            (step == 2 && major != 0u) ||
            (step == 3 && (major != 2u || arg > (uint64_t)s->chunk + HSMC_GCM_TAG_LEN)))
            return HSMC_ERR_FORMAT;
        if (step == 1)
            off += HSMC_COSE_SID_LEN;
        if (off > len)
            return HSMC_ERR_TRUNCATED;
    }
    if ((size_t)arg > len - off)
        return HSMC_ERR_TRUNCATED;
    *total = off + (size_t)arg;
    return HSMC_OK;
}

/* Decode the chunk item in[0..total) strictly into sid, index, ct. */
HSMC_NOINLINE static hsmc_err_t hsmc_stream_parse(hsmc_cose_stream_t *s, const char *fn,
                                                  const uint8_t *in, size_t total,
                                                  const uint8_t **sid, uint64_t *index,
                                                  hsmc_view_t *ct)
{
    hsmc_cbor_dec_t *d = &s->cose.dec;
    size_t n = 0, sid_len = 0;

    hsmc_cbor_dec_init(d, in, total);
    if (hsmc_cbor_get_array(d, &n) != HSMC_OK || n != 3 ||
        hsmc_cbor_get_bstr(d, sid, &sid_len) != HSMC_OK || sid_len != HSMC_COSE_SID_LEN ||
        hsmc_cbor_get_uint(d, index) != HSMC_OK ||
        hsmc_cbor_get_bstr(d, &ct->ptr, &ct->len) != HSMC_OK ||
        hsmc_cbor_dec_finish(d) != HSMC_OK)
        return d->err != HSMC_OK ? hsmc__cose_dec_fail(&s->cose, fn, d)
                                 : hsmc__fail(s->cose.h, HSMC_ERR_FORMAT, CKR_OK,
                                              "%s: not a chunk item [id, index, ciphertext]",
                                              fn);
    if (ct->len < HSMC_GCM_TAG_LEN)
        return hsmc__fail(s->cose.h, HSMC_ERR_FORMAT, CKR_OK,
                          "%s: chunk %lu is shorter than the GCM tag", fn,
                          (unsigned long)*index);
    return HSMC_OK;
}

hsmc_err_t hsmc_cose_stream_open_chunk(hsmc_cose_stream_t *s, const uint8_t *in, size_t len,
                                       size_t *used, uint8_t *out, size_t cap, size_t *out_len,
                                       int *last)
{
    static const char fn[] = "hsmc_cose_stream_open_chunk";
    uint8_t nonce[HSMC_GCM_IV_LEN];
    const uint8_t *sid = NULL;
    hsmc_view_t ct = {NULL, 0};
    uint64_t index = 0;
    size_t total = 0, ptlen, alen;
    int is_last;
    hsmc_err_t err;

    if (s == NULL)
        return HSMC_ERR_ARG;
    if (s->err == HSMC_OK && s->mode == HSMC_STREAM_ENDED && len > 0)
        return hsmc_stream_fail(s, hsmc__fail(s->cose.h, HSMC_ERR_SEQUENCE, CKR_OK,
                                              "%s: data after the last chunk (%lu chunks)", fn,
                                              (unsigned long)s->next));
    err = hsmc_stream_state(s, fn, HSMC_STREAM_OPENING);
    if (err != HSMC_OK)
        return err;
    if (in == NULL || len == 0 || used == NULL || out_len == NULL)
        return hsmc__fail(s->cose.h, HSMC_ERR_ARG, CKR_OK,
                          "%s: in (non-empty), used and out_len must be given; at the end of "
                          "the input call hsmc_cose_stream_open_finish",
                          fn);
    err = hsmc_stream_item_len(s, in, len, &total);
    if (err == HSMC_ERR_TRUNCATED)
        return hsmc_stream_fail(s, hsmc__fail(s->cose.h, err, CKR_OK,
                                              "%s: the input ends inside chunk %lu", fn,
                                              (unsigned long)s->next));
    if (err != HSMC_OK)
        return hsmc_stream_fail(s, hsmc__fail(s->cose.h, err, CKR_OK,
                                              "%s: chunk %lu is not a chunk item of this stream "
                                              "(or longer than its chunk size)",
                                              fn, (unsigned long)s->next));
    err = hsmc_stream_parse(s, fn, in, total, &sid, &index, &ct);
    if (err != HSMC_OK)
        return hsmc_stream_fail(s, err);
    if (memcmp(sid, s->iv, HSMC_COSE_SID_LEN) != 0)
        return hsmc_stream_fail(s, hsmc__fail(s->cose.h, HSMC_ERR_SEQUENCE, CKR_OK,
                                              "%s: chunk %lu belongs to another stream", fn,
                                              (unsigned long)s->next));
    if (index != s->next)
        return hsmc_stream_fail(s, hsmc__fail(s->cose.h, HSMC_ERR_SEQUENCE, CKR_OK,
                                              "%s: chunk %lu came where chunk %lu was expected "
                                              "(reordered, repeated or missing)",
                                              fn, (unsigned long)index, (unsigned long)s->next));
    ptlen = ct.len - HSMC_GCM_TAG_LEN;
    is_last = ptlen < s->chunk;
    *out_len = ptlen;
    *used = total;
    if (out == NULL)
        return HSMC_OK;
    if (cap < ptlen)
        return hsmc__fail(s->cose.h, HSMC_ERR_BUFFER, CKR_OK,
                          "%s: chunk %lu holds %lu bytes; the buffer has %lu", fn,
                          (unsigned long)index, (unsigned long)ptlen, (unsigned long)cap);
    alen = hsmc_stream_aad(s, index, is_last, nonce);
    err = hsmc__cose_gcm_open(&s->cose, nonce, s->cose.scratch, alen, ct.ptr, ct.len, out);
    if (err != HSMC_OK) {
        hsmc__wipe(out, cap);
        return hsmc_stream_fail(s, hsmc__fail(s->cose.h, HSMC_ERR_DECRYPT, CKR_OK,
                                              "%s: chunk %lu does not authenticate (altered, or "
                                              "wrong AAD)",
                                              fn, (unsigned long)index));
    }
    s->next++;
    if (last != NULL)
        *last = is_last;
    if (is_last) {
        s->mode = HSMC_STREAM_ENDED;
        hsmc__cose_crypto_release(&s->cose);
    }
    return HSMC_OK;
}

hsmc_err_t hsmc_cose_stream_open_finish(hsmc_cose_stream_t *s)
{
    static const char fn[] = "hsmc_cose_stream_open_finish";

    if (s == NULL)
        return HSMC_ERR_ARG;
    if (s->err != HSMC_OK)
        return hsmc_stream_state(s, fn, s->mode);
    if (s->mode == HSMC_STREAM_ENDED)
        return HSMC_OK;
    if (s->mode != HSMC_STREAM_OPENING)
        return hsmc_stream_state(s, fn, HSMC_STREAM_OPENING);
    return hsmc_stream_fail(s, hsmc__fail(s->cose.h, HSMC_ERR_TRUNCATED, CKR_OK,
                                          "%s: the stream ended after %lu chunks without its "
                                          "last chunk",
                                          fn, (unsigned long)s->next));
}
