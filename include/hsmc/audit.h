/**
 * @file audit.h
 * @brief Tamper-evident audit trail: one COSE_Sign1 per record, signed by an
 *        audit key in the token, each record carrying the SHA-256 of the
 *        record before it, stored as a CBOR sequence (RFC 8742) in an
 *        append-only file. The format is in docs/FORMATS.md ("Audit records").
 *
 * Writing (the caller owns the file; core does no file I/O):
 *
 *   hsmc_audit_t a;                       // large: static or in a context
 *   hsmc_audit_init(&a, &h, &audit_key);  // fresh chain: seq 0, prev = 32 zero bytes
 *   // existing file: verify it first, then continue its chain
 *   hsmc_audit_resume(&a, v.next_seq, v.prev);
 *   hsmc_audit_sign(&a, &rec, buf, sizeof buf, &n);  // advances seq and prev
 *   // append buf[0..n) to the file, fsync
 *
 * Verifying (the whole file in memory, or record by record):
 *
 *   hsmc_audit_verify_t v;
 *   hsmc_audit_verify_init_spki(&v, NULL, spki);  // or _init_key with the token key
 *   err = hsmc_audit_verify_buf(&v, file, file_len);
 *   // err != HSMC_OK: record number v.count at byte v.offset is the first
 *   // broken one; v.fault says why, hsmc_detail(h) explains.
 *
 * The chain. Record i has seq = i (the first record of a file is seq 0)
 * and prev = SHA-256 of the complete encoded COSE_Sign1 of record i-1
 * (32 zero bytes for record 0). The signature makes each record
 * unchangeable; prev makes removing, reordering, inserting or repeating a
 * record visible at the first record after the change. What the chain
 * cannot show is records cut off at the end of the file: keep the last
 * seq and hash (v.next_seq, v.prev) somewhere else (the station's report,
 * a second medium) and compare them.
 *
 * The unprotected kid is not signed (COSE); the verifier requires it to
 * equal the signed "signer" field, so an altered kid is reported at the
 * record that was altered.
 *
 * Memory: nothing here allocates. hsmc_audit_t and hsmc_audit_verify_t
 * embed an hsmc_cose_t (its scratch) and are a few KiB: keep them static
 * or inside a caller's context, not on a small stack. Records are at most
 * HSMC_AUDIT_RECORD_MAX bytes, payloads at most HSMC_AUDIT_PAYLOAD_MAX.
 */
#ifndef HSMC_AUDIT_H
#define HSMC_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "hsmc/cose.h"
#include "hsmc/key.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest audit payload (the CBOR map) in bytes; the signer's buffer. */
#ifndef HSMC_AUDIT_PAYLOAD_MAX
#define HSMC_AUDIT_PAYLOAD_MAX 1024
#endif

/** Largest encoded record (COSE_Sign1 around the payload: headers, kid,
 *  and a signature of up to an RSA-4096 key). A verifier refuses bigger
 *  items; a streaming reader needs a window of this many bytes. */
#define HSMC_AUDIT_RECORD_MAX (HSMC_AUDIT_PAYLOAD_MAX + 768u)

/** Content type (COSE label 3, protected) of every audit record. */
#define HSMC_AUDIT_CONTENT_TYPE "application/hsmc-audit+cbor"

/** Version of the payload format (key 0). */
#define HSMC_AUDIT_VERSION 1u

/** Length of prev and of a certificate fingerprint (SHA-256). */
#define HSMC_AUDIT_HASH_LEN 32u

/* Integer keys of the payload map (docs/FORMATS.md). Keys 0..7 are always
 * present; 8..15 only when the record has that field (non-empty). */
#define HSMC_AUDIT_K_VERSION 0     /**< uint: HSMC_AUDIT_VERSION */
#define HSMC_AUDIT_K_SEQ 1         /**< uint: position in the chain, from 0 */
#define HSMC_AUDIT_K_PREV 2        /**< bstr 32: SHA-256 of the previous record */
#define HSMC_AUDIT_K_TIME 3        /**< int: seconds since 1970 UTC (-1: clock unset) */
#define HSMC_AUDIT_K_OP 4          /**< tstr: operation ("provision", "issue", ...) */
#define HSMC_AUDIT_K_SIGNER 5      /**< tstr: label of the audit key (= kid) */
#define HSMC_AUDIT_K_RESULT 6      /**< int: hsmc_err_t, 0 = success */
#define HSMC_AUDIT_K_RESULT_TEXT 7 /**< tstr: what happened / why it failed */
#define HSMC_AUDIT_K_OPERATOR 8    /**< tstr: who ran it */
#define HSMC_AUDIT_K_ROLE 9        /**< tstr: the operator's role ("ca", "station", ...) */
#define HSMC_AUDIT_K_DEVICE 10     /**< tstr: device id */
#define HSMC_AUDIT_K_KEY_ID 11     /**< bstr: CKA_ID of the key operated on */
#define HSMC_AUDIT_K_KEY 12        /**< tstr: that key's label or PKCS#11 URI */
#define HSMC_AUDIT_K_SERIAL 13     /**< bstr: certificate serial number */
#define HSMC_AUDIT_K_FINGERPRINT 14 /**< bstr 32: SHA-256 of the certificate DER */
#define HSMC_AUDIT_K_CEREMONY 15   /**< tstr: ceremony reference */

/**
 * One audit record. Text fields are UTF-8 without control characters
 * (views: no NUL needed; hsmc_audit_text() makes one from a C string);
 * an empty view ({NULL, 0}) means "absent" and is left out of the
 * encoding. For hsmc_audit_sign() the caller fills what it knows; seq,
 * prev and signer come from the signing context. Decoded records have
 * every view pointing into the decoder's input.
 */
typedef struct hsmc_audit_record {
    uint64_t seq;                        /**< position in the chain (sign: ignored) */
    uint8_t prev[HSMC_AUDIT_HASH_LEN];   /**< hash of the previous record (sign: ignored) */
    hsmc_view_t signer;                  /**< audit key label (sign: ignored) */
    int64_t time;                        /**< seconds since 1970 UTC, -1 when unknown */
    hsmc_view_t op;                      /**< required: operation name */
    hsmc_err_t result;                   /**< HSMC_OK or why the operation failed */
    hsmc_view_t result_text;             /**< optional on input: empty gives hsmc_strerror(result) */
    hsmc_view_t operator_id;             /**< who */
    hsmc_view_t role;                    /**< operator role */
    hsmc_view_t device_id;               /**< device id */
    hsmc_view_t key_id;                  /**< CKA_ID bytes */
    hsmc_view_t key;                     /**< key label or PKCS#11 URI (never with a PIN) */
    hsmc_view_t serial;                  /**< certificate serial bytes */
    hsmc_view_t fingerprint;             /**< SHA-256 of the certificate: 32 bytes or empty */
    hsmc_view_t ceremony;                /**< ceremony reference */
} hsmc_audit_record_t;

/** Clear a record: every field absent, time -1, result HSMC_OK. NULL is ignored. */
void hsmc_audit_record_init(hsmc_audit_record_t *rec);

/** View of a C string's bytes without its NUL; NULL gives {NULL, 0}. */
hsmc_view_t hsmc_audit_text(const char *s);

/**
 * Encode rec (its own seq, prev and signer included) as the deterministic
 * CBOR payload map: integer keys in ascending order, shortest heads,
 * absent fields left out.
 * @param out output, or NULL for the size only; *len the bytes written or needed.
 * @return HSMC_OK; HSMC_ERR_ARG (rec or len NULL, op or signer empty, a
 *   fingerprint that is not 32 bytes, text that is not UTF-8 or has
 *   control characters, a view with length but no bytes; the detail in h
 *   names the field when h is given); HSMC_ERR_LIMIT (more than
 *   HSMC_AUDIT_PAYLOAD_MAX bytes); HSMC_ERR_BUFFER (*len set).
 */
hsmc_err_t hsmc_audit_encode(hsmc_t *h, const hsmc_audit_record_t *rec, uint8_t *out, size_t cap,
                             size_t *len);

/**
 * Decode a payload strictly: a map with keys in ascending order, no
 * unknown or repeated key, keys 0..7 present, version 1, prev and
 * fingerprint of 32 bytes, present texts non-empty UTF-8 without control
 * characters, present byte strings non-empty, result <= 0, nothing after
 * the map, at most HSMC_AUDIT_PAYLOAD_MAX bytes.
 * @param h   optional, for the detail text.
 * @param rec out: views point into payload.
 * @return HSMC_OK; HSMC_ERR_FORMAT (the detail says what); HSMC_ERR_ARG.
 */
hsmc_err_t hsmc_audit_decode(hsmc_t *h, hsmc_view_t payload, hsmc_audit_record_t *rec);

/* ---- Signing ------------------------------------------------------------ */

/** Signing context. Fields are private. */
typedef struct hsmc_audit {
    hsmc_cose_t cose;                       /**< token, content type, scratch */
    hsmc_key_t key;                         /**< the audit key (a copy) */
    int have_key;                           /**< key given to init */
    uint64_t seq;                           /**< seq of the next record */
    uint8_t prev[HSMC_AUDIT_HASH_LEN];      /**< hash of the last record signed */
    uint8_t payload[HSMC_AUDIT_PAYLOAD_MAX];/**< the payload being signed */
} hsmc_audit_t;

/**
 * Prepare to sign a fresh chain (seq 0, prev = 32 zero bytes) with the
 * audit key `key` (a signing key pair in the token behind h, with a label:
 * the label is the kid and the signer field). The key is copied; h must
 * outlive the context. Cannot fail: a NULL key makes hsmc_audit_sign()
 * fail with HSMC_ERR_ARG. A NULL a is ignored.
 */
void hsmc_audit_init(hsmc_audit_t *a, hsmc_t *h, const hsmc_key_t *key);

/**
 * Continue an existing chain: the next record gets seq `next_seq` and
 * prev = `prev` (SHA-256 of the file's last record). Take both from a
 * verifier that checked the whole file (v.next_seq, v.prev) so a record
 * is never chained to a file that was altered.
 * @return HSMC_OK; HSMC_ERR_ARG (a or prev NULL).
 */
hsmc_err_t hsmc_audit_resume(hsmc_audit_t *a, uint64_t next_seq,
                             const uint8_t prev[HSMC_AUDIT_HASH_LEN]);

/**
 * Sign the next record of the chain: payload = rec with the context's seq,
 * prev and signer (the key label); COSE_Sign1 with protected {1: alg from
 * the key (ES256 for P-256, ...), 3: HSMC_AUDIT_CONTENT_TYPE}, unprotected
 * {4: key label}, the payload attached.
 * On success with out given, the context advances: seq + 1, prev =
 * SHA-256(out[0..*out_len)). The caller then appends exactly those bytes
 * to the file and syncs it. If that write fails, the file's end is
 * unknown: stop, and later verify the file and hsmc_audit_resume() from
 * what it holds.
 * @param out output (at most HSMC_AUDIT_RECORD_MAX bytes are needed), or
 *            NULL for the size (the token is asked the signature length,
 *            nothing is signed, the context does not advance).
 * @return HSMC_OK; errors of hsmc_audit_encode (HSMC_ERR_ARG, HSMC_ERR_LIMIT);
 *   HSMC_ERR_ARG (no key, key without a label); HSMC_ERR_BUFFER (*out_len
 *   set); HSMC_ERR_UNSUPPORTED (no COSE algorithm for the key);
 *   HSMC_ERR_KEY_USAGE; HSMC_ERR_LIMIT (EdDSA key with a payload larger
 *   than the COSE scratch allows); token errors. On failure the context
 *   does not advance and out is wiped.
 */
hsmc_err_t hsmc_audit_sign(hsmc_audit_t *a, const hsmc_audit_record_t *rec, uint8_t *out,
                           size_t cap, size_t *out_len);

/** Release and wipe the context. NULL is ignored. */
void hsmc_audit_free(hsmc_audit_t *a);

/* ---- Verifying ----------------------------------------------------------- */

/** Why a record broke the chain. */
typedef enum hsmc_audit_fault {
    HSMC_AUDIT_FAULT_NONE = 0,  /**< no broken record (so far) */
    HSMC_AUDIT_FAULT_MALFORMED, /**< not an hsmc audit record: bad CBOR/COSE, wrong content
                                     type, payload breaking the format, too large (HSMC_ERR_FORMAT) */
    HSMC_AUDIT_FAULT_TRUNCATED, /**< the file ends inside this record (HSMC_ERR_TRUNCATED) */
    HSMC_AUDIT_FAULT_SIGNATURE, /**< the signature does not verify with the audit key: altered
                                     or forged (HSMC_ERR_SIGNATURE) */
    HSMC_AUDIT_FAULT_KID,       /**< the unsigned kid differs from the signed signer: altered
                                     (HSMC_ERR_SIGNATURE) */
    HSMC_AUDIT_FAULT_PREV,      /**< prev is not the hash of the record before: a record was
                                     removed, reordered, inserted or repeated here
                                     (HSMC_ERR_AUDIT_CHAIN) */
    HSMC_AUDIT_FAULT_SEQ        /**< prev matches but seq is not the previous seq + 1
                                     (HSMC_ERR_AUDIT_CHAIN) */
} hsmc_audit_fault_t;

/** "none", "malformed", "truncated", "bad signature", "kid altered",
 *  "prev mismatch", "seq gap". Never NULL. */
const char *hsmc_audit_fault_name(hsmc_audit_fault_t fault);

/**
 * Chain verifier: the running state between records. Caller-owned; the
 * fields marked "readable" may be read at any time, the rest are private.
 */
typedef struct hsmc_audit_verify {
    hsmc_cose_t cose;                  /**< private: parsing and signature checks */
    hsmc_key_t key;                    /**< private: token key (key mode) */
    hsmc_view_t spki;                  /**< private: public key (SPKI mode), borrowed */
    int mode;                          /**< private: 0 none, 1 token key, 2 SPKI */
    uint64_t count;                    /**< readable: records verified; after a failure,
                                            the index of the first broken record */
    uint64_t offset;                   /**< readable: bytes verified; after a failure, the
                                            byte offset of the first broken record */
    uint64_t next_seq;                 /**< readable: seq the next record must have */
    uint8_t prev[HSMC_AUDIT_HASH_LEN]; /**< readable: SHA-256 of the last good record
                                            (zeros before the first) */
    hsmc_err_t err;                    /**< readable: first chain failure, sticky */
    hsmc_audit_fault_t fault;          /**< readable: its kind */
    hsmc_audit_record_t rec;           /**< private: the record decoded when the caller
                                            passes none */
} hsmc_audit_verify_t;

/**
 * Verify with the audit key in the token behind h (hsmc_cose_verify1 with
 * exactly this key; the kid does not choose the key, so a record signed
 * by any other key fails). The key is copied. Cannot fail; a NULL key
 * makes hsmc_audit_verify_next() fail with HSMC_ERR_ARG. NULL v is ignored.
 */
void hsmc_audit_verify_init_key(hsmc_audit_verify_t *v, hsmc_t *h, const hsmc_key_t *key);

/**
 * Verify in software with the audit key's SubjectPublicKeyInfo DER (from
 * hsmc_key_export_pub, e.g. on a machine without the token). spki is
 * borrowed: keep it alive while v is used. h may be NULL or unopened (it
 * only receives the detail text). Cannot fail; an empty spki makes
 * hsmc_audit_verify_next() fail with HSMC_ERR_ARG. NULL v is ignored.
 */
void hsmc_audit_verify_init_spki(hsmc_audit_verify_t *v, hsmc_t *h, hsmc_view_t spki);

/**
 * Verify the next record, which starts at in[0]. `in` must hold at least
 * HSMC_AUDIT_RECORD_MAX bytes, or everything left of the file: a record
 * that does not end inside `in` is then TRUNCATED when len is below
 * HSMC_AUDIT_RECORD_MAX, else MALFORMED (too large). Checks, in order:
 * the item's extent, the COSE_Sign1 and its signature, the content type,
 * the payload format, kid = signer, prev, seq.
 * @param used out: bytes of the record (consume them, then call again
 *             until the file is used up); 0 on failure.
 * @param rec  optional out: the decoded record, views into in.
 * @return HSMC_OK; on a broken record (sticky: later calls return it, and
 *   count/offset stay on that record, fault says why) HSMC_ERR_FORMAT,
 *   HSMC_ERR_TRUNCATED, HSMC_ERR_SIGNATURE or HSMC_ERR_AUDIT_CHAIN;
 *   not sticky (the same record may be tried again): HSMC_ERR_ARG (NULL
 *   pointers, len 0, no key given), token errors of key mode.
 */
hsmc_err_t hsmc_audit_verify_next(hsmc_audit_verify_t *v, const uint8_t *in, size_t len,
                                  size_t *used, hsmc_audit_record_t *rec);

/**
 * End of the file: the sticky chain error, or HSMC_OK (count records, all
 * good; an empty file is an empty chain). Call it once every byte was
 * given to hsmc_audit_verify_next().
 * @return HSMC_OK, the sticky error, or HSMC_ERR_ARG (v NULL).
 */
hsmc_err_t hsmc_audit_verify_finish(const hsmc_audit_verify_t *v);

/**
 * Verify a whole file held in memory: hsmc_audit_verify_next over
 * buf[0..len) then hsmc_audit_verify_finish.
 * @return as hsmc_audit_verify_finish, or a non-sticky error of _next.
 */
hsmc_err_t hsmc_audit_verify_buf(hsmc_audit_verify_t *v, const uint8_t *buf, size_t len);

/** Release and wipe the verifier. NULL is ignored. */
void hsmc_audit_verify_free(hsmc_audit_verify_t *v);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_AUDIT_H */
