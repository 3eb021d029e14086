/*
 * Tamper-evident audit trail (audit.h) against a real SoftHSM2 token:
 *   an audit key (P-256, purpose signing) signs a chain of 20 records into
 *   a buffer; the chain verifies with the token key and with its
 *   SubjectPublicKeyInfo, whole or record by record through a window of
 *   HSMC_AUDIT_RECORD_MAX bytes, and decodes back to what was signed;
 *   every tampering names the first broken record and why: a byte flipped
 *   anywhere in any record, a record deleted, two swapped, one duplicated,
 *   a forged record (another key, even one with the audit key's label)
 *   inserted, a signed non-audit message inserted, the file cut at every
 *   byte of its last record (truncated, the 19 before intact), a signer
 *   that skips a seq, a file that starts in the middle of a chain;
 *   a chain resumed from a verified file continues it;
 *   the payload encoder refuses bad fields, the decoder bad payloads;
 *   an independent checker (test/tools/audit_check.py, python3-cbor2 +
 *   python3-cryptography) agrees on the good chain and on every tampered
 *   file (same record, same kind of fault).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "hsmc_test.h"

#define NREC 20
#define FILE_CAP (NREC * HSMC_AUDIT_RECORD_MAX + HSMC_AUDIT_RECORD_MAX * 2)

static hsmc_t H, H2;
static hsmc_key_t K_AUDIT, K_FORGER, K_FAKE; /* K_FAKE: token test2, label = audit label */
static uint8_t SPKI[256];
static size_t SPKI_LEN;
static hsmc_audit_t A;
static hsmc_audit_verify_t VER;

static uint8_t CHAIN[FILE_CAP];
static size_t CHAIN_LEN;
static size_t OFF[NREC + 1]; /* OFF[i] start of record i, OFF[NREC] = CHAIN_LEN */
static uint8_t KEYID[NREC][16], SERIAL[NREC][17], FPR[NREC][32];
static char DEV[NREC][16];

static const char *DIR_;
static char SPKI_PATH[512];

/* One tampered file: bytes, and what the C verifier said. */
typedef struct {
    uint8_t *data;
    size_t len;
    long index;  /* expected first broken record, -1: chain must be good */
    int fault;   /* expected fault, -1: any */
    hsmc_err_t err;
    uint64_t got_index;
    uint64_t got_offset;
    hsmc_audit_fault_t got_fault;
    char name[48];
} tcase_t;

static tcase_t *CASES;
static size_t NCASES, CAP_CASES;

/* ---- helpers ------------------------------------------------------------------ */

static hsmc_view_t V(const void *p, size_t n)
{
    hsmc_view_t v;
    v.ptr = (const uint8_t *)p;
    v.len = n;
    return v;
}

static void fill_record(hsmc_audit_record_t *r, int i)
{
    size_t j;
    hsmc_audit_record_init(r);
    for (j = 0; j < 16; j++)
        KEYID[i][j] = (uint8_t)(i * 16 + j);
    for (j = 0; j < 17; j++)
        SERIAL[i][j] = (uint8_t)(j == 0 ? 0x00 : 0x80 + i + j);
    for (j = 0; j < 32; j++)
        FPR[i][j] = (uint8_t)(0xa0 ^ (i + j));
    snprintf(DEV[i], sizeof DEV[i], "dev-%04d", i);
    r->time = 1700000000 + i;
    r->op = hsmc_audit_text(i % 5 == 4 ? "issue" : "provision");
    r->operator_id = hsmc_audit_text("alice");
    r->role = hsmc_audit_text("station");
    r->device_id = hsmc_audit_text(DEV[i]);
    r->key_id = V(KEYID[i], 16);
    r->key = hsmc_audit_text("pkcs11:token=dev;object=device-key;type=private");
    if (i % 7 == 3) {
        r->result = HSMC_ERR_TOKEN;
        r->result_text = hsmc_audit_text("C_GenerateKey: CKR_DEVICE_ERROR (0x30)");
    } else {
        r->serial = V(SERIAL[i], 17);
        r->fingerprint = V(FPR[i], 32);
    }
    if (i == 0)
        r->ceremony = hsmc_audit_text("line-7 bring-up 2024-01");
}

/* Verify p[0..n) through a window of HSMC_AUDIT_RECORD_MAX bytes, as a
 * reader of a big file would; result in *v (initialised by the caller). */
static hsmc_err_t verify_windowed(hsmc_audit_verify_t *v, const uint8_t *p, size_t n)
{
    static uint8_t win[HSMC_AUDIT_RECORD_MAX];
    size_t have = 0, filepos = 0, used = 0, take;
    hsmc_err_t err;

    for (;;) {
        take = sizeof win - have;
        if (take > n - filepos)
            take = n - filepos;
        memcpy(win + have, p + filepos, take);
        have += take;
        filepos += take;
        if (have == 0)
            break;
        err = hsmc_audit_verify_next(v, win, have, &used, NULL);
        if (err != HSMC_OK)
            return err;
        memmove(win, win + used, have - used);
        have -= used;
    }
    return hsmc_audit_verify_finish(v);
}

/* Run the C verifier on a case: always with the token key (fast); with the
 * SPKI (mbedTLS, ~12x slower), whole and through a window, when `all`.
 * Every path must name the same record, offset and fault. */
static void run_case(tcase_t *t, int all)
{
    hsmc_audit_verify_t *v = &VER;
    hsmc_err_t e1, e2;
    uint64_t i1, o1;
    hsmc_audit_fault_t f1;

    hsmc_audit_verify_init_key(v, &H, &K_AUDIT);
    e1 = hsmc_audit_verify_buf(v, t->data, t->len);
    i1 = v->count;
    o1 = v->offset;
    f1 = v->fault;
    hsmc_audit_verify_free(v);
    t->err = e1;
    t->got_index = i1;
    t->got_offset = o1;
    t->got_fault = f1;

    if (all) {
        hsmc_audit_verify_init_spki(v, &H, V(SPKI, SPKI_LEN));
        e2 = hsmc_audit_verify_buf(v, t->data, t->len);
        CHECK(e2 == e1 && v->count == i1 && v->offset == o1 && v->fault == f1);
        hsmc_audit_verify_free(v);
        hsmc_audit_verify_init_spki(v, &H, V(SPKI, SPKI_LEN));
        e2 = verify_windowed(v, t->data, t->len);
        CHECK(e2 == e1 && v->count == i1 && v->offset == o1 && v->fault == f1);
        hsmc_audit_verify_free(v);
    }
    if (t->index < 0) {
        if (e1 != HSMC_OK)
            fprintf(stderr, "  case %s: want a good chain, got %s at %lu (%s): %s\n", t->name,
                    hsmc_err_name(e1), (unsigned long)i1, hsmc_audit_fault_name(f1),
                    hsmc_detail(&H));
        CHECK(e1 == HSMC_OK);
        return;
    }
    if (e1 == HSMC_OK || (long)i1 != t->index || (t->fault >= 0 && (int)f1 != t->fault)) {
        fprintf(stderr, "  case %s: want record %ld (%s), got %s at %lu (%s): %s\n", t->name,
                t->index, t->fault >= 0 ? hsmc_audit_fault_name((hsmc_audit_fault_t)t->fault)
                                        : "any",
                hsmc_err_name(e1), (unsigned long)i1, hsmc_audit_fault_name(f1),
                hsmc_detail(&H));
        CHECK(0);
    }
    /* The offset named is the record's start in the file, records before it intact. */
    CHECK(e1 == HSMC_OK || o1 <= t->len);
}

static tcase_t *add_case(const uint8_t *p, size_t n, long index, int fault, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static tcase_t *add_case(const uint8_t *p, size_t n, long index, int fault, const char *fmt, ...)
{
    va_list ap;
    tcase_t *t;
    if (NCASES == CAP_CASES) {
        CAP_CASES = CAP_CASES ? 2 * CAP_CASES : 256;
        CASES = realloc(CASES, CAP_CASES * sizeof *CASES);
        if (CASES == NULL)
            exit(2);
    }
    t = &CASES[NCASES++];
    memset(t, 0, sizeof *t);
    t->data = malloc(n ? n : 1);
    if (t->data == NULL)
        exit(2);
    memcpy(t->data, p, n);
    t->len = n;
    t->index = index;
    t->fault = fault;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    return t;
}

/* A copy of the chain with records rebuilt from a list of record indices
 * (-1 = insert `extra`). */
static size_t splice(uint8_t *out, const int *order, size_t n, const uint8_t *extra,
                     size_t extra_len)
{
    size_t i, len = 0, rl;
    for (i = 0; i < n; i++) {
        if (order[i] < 0) {
            memcpy(out + len, extra, extra_len);
            len += extra_len;
            continue;
        }
        rl = OFF[order[i] + 1] - OFF[order[i]];
        memcpy(out + len, CHAIN + OFF[order[i]], rl);
        len += rl;
    }
    return len;
}

/* ---- setup -------------------------------------------------------------------- */

static void test_setup(void)
{
    hsmc_cfg_t cfg;
    int created = 0;

    DIR_ = hsmc_test_env("HSMC_TEST_DIR");
    hsmc_init(&H);
    hsmc_test_cfg(&cfg, "test");
    CHECK_ERR(hsmc_open(&H, &cfg), HSMC_OK);
    hsmc_init(&H2);
    hsmc_test_cfg(&cfg, "test2");
    CHECK_ERR(hsmc_open(&H2, &cfg), HSMC_OK);
    CHECK_ERR(hsmc_key_find_or_create(&H, "audit-v0001", HSMC_PURPOSE_SIGNING, &K_AUDIT, &created),
              HSMC_OK);
    CHECK(K_AUDIT.alg == HSMC_ALG_P256);
    CHECK_ERR(hsmc_key_find_or_create(&H, "forger", HSMC_PURPOSE_SIGNING, &K_FORGER, NULL),
              HSMC_OK);
    CHECK_ERR(hsmc_key_find_or_create(&H2, "audit-v0001", HSMC_PURPOSE_SIGNING, &K_FAKE, NULL),
              HSMC_OK);
    CHECK_ERR(hsmc_key_export_pub(&H, &K_AUDIT, SPKI, sizeof SPKI, &SPKI_LEN), HSMC_OK);
    snprintf(SPKI_PATH, sizeof SPKI_PATH, "%s/audit-spki.der", DIR_);
    REQUIRE(hsmc_test_write_file(SPKI_PATH, SPKI, SPKI_LEN));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the good chain --------------------------------------------------------------- */

static void test_sign_chain(void)
{
    hsmc_audit_record_t r;
    size_t n = 0, n2 = 0;
    uint8_t hash[32];
    int i;

    hsmc_audit_init(&A, &H, &K_AUDIT);
    CHAIN_LEN = 0;
    for (i = 0; i < NREC; i++) {
        fill_record(&r, i);
        /* Size-only pass: the size, no signature, the chain does not move. */
        CHECK_ERR(hsmc_audit_sign(&A, &r, NULL, 0, &n), HSMC_OK);
        CHECK(A.seq == (uint64_t)i);
        CHECK(n <= HSMC_AUDIT_RECORD_MAX);
        /* Too small a buffer: refused, nothing advances. */
        CHECK_ERR(hsmc_audit_sign(&A, &r, CHAIN + CHAIN_LEN, n - 1, &n2), HSMC_ERR_BUFFER);
        CHECK(A.seq == (uint64_t)i);
        OFF[i] = CHAIN_LEN;
        CHECK_ERR(hsmc_audit_sign(&A, &r, CHAIN + CHAIN_LEN, sizeof CHAIN - CHAIN_LEN, &n2),
                  HSMC_OK);
        CHECK(n2 == n);
        CHAIN_LEN += n2;
        CHECK(A.seq == (uint64_t)i + 1);
        REQUIRE(hsmc_hash(HSMC_HASH_SHA256, CHAIN + OFF[i], n2, hash) == HSMC_OK);
        CHECK(memcmp(hash, A.prev, 32) == 0);
    }
    OFF[NREC] = CHAIN_LEN;
    fprintf(stderr, "  20 records, %lu bytes (%lu..%lu per record)\n", (unsigned long)CHAIN_LEN,
            (unsigned long)(OFF[1] - OFF[0]), (unsigned long)(OFF[4] - OFF[3]));
}

static void test_verify_good(void)
{
    hsmc_audit_verify_t *v = &VER;
    hsmc_audit_record_t r, want;
    uint8_t zero[32] = {0}, hash[32];
    size_t pos = 0, used = 0;
    int i;

    hsmc_audit_verify_init_key(v, &H, &K_AUDIT);
    CHECK_ERR(hsmc_audit_verify_buf(v, CHAIN, CHAIN_LEN), HSMC_OK);
    CHECK(v->count == NREC && v->offset == CHAIN_LEN && v->next_seq == NREC);
    CHECK(memcmp(v->prev, A.prev, 32) == 0);
    hsmc_audit_verify_free(v);

    hsmc_audit_verify_init_spki(v, NULL, V(SPKI, SPKI_LEN));
    CHECK_ERR(verify_windowed(v, CHAIN, CHAIN_LEN), HSMC_OK);
    CHECK(v->count == NREC && v->next_seq == NREC && memcmp(v->prev, A.prev, 32) == 0);
    hsmc_audit_verify_free(v);

    /* Record by record, decoded: what was signed comes back. */
    hsmc_audit_verify_init_spki(v, &H, V(SPKI, SPKI_LEN));
    for (i = 0; i < NREC; i++) {
        CHECK_ERR(hsmc_audit_verify_next(v, CHAIN + pos, CHAIN_LEN - pos, &used, &r), HSMC_OK);
        CHECK(pos == OFF[i] && used == OFF[i + 1] - OFF[i]);
        fill_record(&want, i);
        CHECK(r.seq == (uint64_t)i && r.time == want.time && r.result == want.result);
        if (i == 0)
            CHECK(memcmp(r.prev, zero, 32) == 0);
        else {
            REQUIRE(hsmc_hash(HSMC_HASH_SHA256, CHAIN + OFF[i - 1], OFF[i] - OFF[i - 1], hash) ==
                    HSMC_OK);
            CHECK(memcmp(r.prev, hash, 32) == 0);
        }
        CHECK(r.signer.len == 11 && memcmp(r.signer.ptr, "audit-v0001", 11) == 0);
        CHECK(r.op.len == want.op.len && memcmp(r.op.ptr, want.op.ptr, r.op.len) == 0);
        CHECK(r.device_id.len == strlen(DEV[i]) && memcmp(r.device_id.ptr, DEV[i], 8) == 0);
        CHECK(r.key_id.len == 16 && memcmp(r.key_id.ptr, KEYID[i], 16) == 0);
        CHECK(r.key.len == want.key.len);
        CHECK(r.operator_id.len == 5 && r.role.len == 7);
        CHECK(r.serial.len == want.serial.len && r.fingerprint.len == want.fingerprint.len);
        if (want.fingerprint.len)
            CHECK(memcmp(r.fingerprint.ptr, FPR[i], 32) == 0 &&
                  memcmp(r.serial.ptr, SERIAL[i], 17) == 0);
        CHECK(r.ceremony.len == (i == 0 ? strlen("line-7 bring-up 2024-01") : 0));
        if (want.result_text.len)
            CHECK(r.result_text.len == want.result_text.len);
        else
            CHECK(r.result_text.len == strlen("success"));
        pos += used;
    }
    CHECK_ERR(hsmc_audit_verify_finish(v), HSMC_OK);
    hsmc_audit_verify_free(v);

    /* Speed of each path, for the report. */
    {
        double t0 = now_s(), t1, t2;
        for (i = 0; i < 10; i++) {
            hsmc_audit_verify_init_key(v, &H, &K_AUDIT);
            CHECK_ERR(hsmc_audit_verify_buf(v, CHAIN, CHAIN_LEN), HSMC_OK);
            hsmc_audit_verify_free(v);
        }
        t1 = now_s();
        for (i = 0; i < 10; i++) {
            hsmc_audit_verify_init_spki(v, &H, V(SPKI, SPKI_LEN));
            CHECK_ERR(hsmc_audit_verify_buf(v, CHAIN, CHAIN_LEN), HSMC_OK);
            hsmc_audit_verify_free(v);
        }
        t2 = now_s();
        fprintf(stderr, "  verify: token %.0f records/s, SPKI (mbedTLS) %.0f records/s\n",
                200.0 / (t1 - t0), 200.0 / (t2 - t1));
    }

    /* An empty file is an empty chain. */
    hsmc_audit_verify_init_spki(v, NULL, V(SPKI, SPKI_LEN));
    CHECK_ERR(hsmc_audit_verify_buf(v, NULL, 0), HSMC_OK);
    CHECK(v->count == 0 && memcmp(v->prev, zero, 32) == 0);
    hsmc_audit_verify_free(v);
}

/* A chain resumed from a verified file continues it. */
static void test_resume(void)
{
    static uint8_t buf[FILE_CAP];
    hsmc_audit_verify_t *v = &VER;
    hsmc_audit_t *a = malloc(sizeof *a);
    hsmc_audit_record_t r;
    size_t n = 0, len;
    int i;

    REQUIRE(a != NULL);
    len = OFF[12];
    memcpy(buf, CHAIN, len);
    hsmc_audit_verify_init_spki(v, NULL, V(SPKI, SPKI_LEN));
    CHECK_ERR(hsmc_audit_verify_buf(v, buf, len), HSMC_OK);
    hsmc_audit_init(a, &H, &K_AUDIT);
    CHECK_ERR(hsmc_audit_resume(a, v->next_seq, v->prev), HSMC_OK);
    hsmc_audit_verify_free(v);
    for (i = 12; i < 15; i++) {
        fill_record(&r, i);
        CHECK_ERR(hsmc_audit_sign(a, &r, buf + len, sizeof buf - len, &n), HSMC_OK);
        len += n;
    }
    hsmc_audit_verify_init_key(v, &H, &K_AUDIT);
    CHECK_ERR(hsmc_audit_verify_buf(v, buf, len), HSMC_OK);
    CHECK(v->count == 15);
    hsmc_audit_verify_free(v);
    /* A fresh chain appended to an existing file is caught at its first record. */
    hsmc_audit_free(a);
    hsmc_audit_init(a, &H, &K_AUDIT);
    fill_record(&r, 0);
    CHECK_ERR(hsmc_audit_sign(a, &r, buf + len, sizeof buf - len, &n), HSMC_OK);
    add_case(buf, len + n, 15, HSMC_AUDIT_FAULT_PREV, "fresh chain appended at %d", 15);
    /* A signer that skips a number (intact hashes): seq gap. */
    hsmc_audit_free(a);
    memcpy(buf, CHAIN, OFF[5]);
    len = OFF[5];
    hsmc_audit_init(a, &H, &K_AUDIT);
    REQUIRE(hsmc_hash(HSMC_HASH_SHA256, CHAIN + OFF[4], OFF[5] - OFF[4], a->prev) == HSMC_OK);
    a->seq = 7;
    fill_record(&r, 5);
    CHECK_ERR(hsmc_audit_sign(a, &r, buf + len, sizeof buf - len, &n), HSMC_OK);
    add_case(buf, len + n, 5, HSMC_AUDIT_FAULT_SEQ, "seq skipped at %d", 5);
    hsmc_audit_free(a);
    free(a);
}

/* ---- API contract: encoder and decoder ----------------------------------------- */

static void test_encode_decode(void)
{
    uint8_t buf[HSMC_AUDIT_PAYLOAD_MAX], big[HSMC_AUDIT_PAYLOAD_MAX + 8];
    hsmc_audit_record_t r, d;
    hsmc_cbor_enc_t e;
    size_t n = 0, n2 = 0;

    fill_record(&r, 1);
    r.signer = hsmc_audit_text("audit-v0001");
    r.ceremony = hsmc_audit_text("c-1");
    r.seq = 3;
    memset(r.prev, 0x5a, 32);
    CHECK_ERR(hsmc_audit_encode(&H, &r, NULL, 0, &n), HSMC_OK);
    CHECK_ERR(hsmc_audit_encode(&H, &r, buf, n - 1, &n2), HSMC_ERR_BUFFER);
    CHECK_ERR(hsmc_audit_encode(&H, &r, buf, sizeof buf, &n2), HSMC_OK);
    CHECK(n2 == n);
    CHECK(buf[0] == 0xb0); /* map of 16 pairs: every field present */
    CHECK_ERR(hsmc_audit_decode(&H, V(buf, n), &d), HSMC_OK);
    CHECK(d.seq == 3 && d.prev[31] == 0x5a && d.time == r.time);
    CHECK_ERR(hsmc_audit_decode(&H, V(buf, n - 1), &d), HSMC_ERR_FORMAT);

    /* Bad fields. */
    r.op = hsmc_audit_text(NULL);
    CHECK_ERR(hsmc_audit_encode(&H, &r, buf, sizeof buf, &n), HSMC_ERR_ARG);
    fill_record(&r, 1);
    r.signer = hsmc_audit_text("audit-v0001");
    r.fingerprint = V(FPR[1], 31);
    CHECK_ERR(hsmc_audit_encode(&H, &r, buf, sizeof buf, &n), HSMC_ERR_ARG);
    r.fingerprint = V(FPR[1], 32);
    r.device_id = hsmc_audit_text("dev\n0001");
    CHECK_ERR(hsmc_audit_encode(&H, &r, buf, sizeof buf, &n), HSMC_ERR_ARG);
    r.device_id = V("\xc3\x28", 2); /* not UTF-8 */
    CHECK_ERR(hsmc_audit_encode(&H, &r, buf, sizeof buf, &n), HSMC_ERR_ARG);
    r.device_id = V(NULL, 3);
    CHECK_ERR(hsmc_audit_encode(&H, &r, buf, sizeof buf, &n), HSMC_ERR_ARG);
    r.device_id = hsmc_audit_text("dev-0001");
    r.result = (hsmc_err_t)5;
    CHECK_ERR(hsmc_audit_encode(&H, &r, buf, sizeof buf, &n), HSMC_ERR_ARG);
    r.result = HSMC_OK;
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = 0;
    r.key = hsmc_audit_text((const char *)big);
    CHECK_ERR(hsmc_audit_encode(&H, &r, NULL, 0, &n), HSMC_ERR_LIMIT);
    CHECK_ERR(hsmc_audit_sign(&A, &r, buf, sizeof buf, &n), HSMC_ERR_LIMIT);
    CHECK_ERR(hsmc_audit_encode(&H, NULL, buf, sizeof buf, &n), HSMC_ERR_ARG);

    /* Decoder: unknown key, unsorted keys, missing key, empty text, wrong version. */
    hsmc_cbor_enc_init(&e, buf, sizeof buf);
    hsmc_cbor_put_map(&e, 9);
    hsmc_cbor_put_uint(&e, 0);
    hsmc_cbor_put_uint(&e, 1);
    hsmc_cbor_put_uint(&e, 1);
    hsmc_cbor_put_uint(&e, 0);
    hsmc_cbor_put_uint(&e, 2);
    hsmc_cbor_put_bstr(&e, r.prev, 32);
    hsmc_cbor_put_uint(&e, 3);
    hsmc_cbor_put_int(&e, 5);
    hsmc_cbor_put_uint(&e, 4);
    hsmc_cbor_put_tstr(&e, "op", 2);
    hsmc_cbor_put_uint(&e, 5);
    hsmc_cbor_put_tstr(&e, "k", 1);
    hsmc_cbor_put_uint(&e, 6);
    hsmc_cbor_put_int(&e, 0);
    hsmc_cbor_put_uint(&e, 7);
    hsmc_cbor_put_tstr(&e, "ok", 2);
    hsmc_cbor_put_uint(&e, 16); /* unknown */
    hsmc_cbor_put_tstr(&e, "x", 1);
    CHECK_ERR(hsmc_cbor_enc_finish(&e, &n), HSMC_OK);
    CHECK_ERR(hsmc_audit_decode(&H, V(buf, n), &d), HSMC_ERR_FORMAT);
    buf[0] = 0xa8; /* the same without key 16: valid */
    CHECK_ERR(hsmc_audit_decode(&H, V(buf, n - 3), &d), HSMC_OK);
    buf[n - 7] = 0x08; /* key 7 -> 8: text 7 missing */
    CHECK_ERR(hsmc_audit_decode(&H, V(buf, n - 3), &d), HSMC_ERR_FORMAT);
    buf[n - 7] = 0x07;
    buf[n - 6] = 0x60; /* "" then stray bytes */
    CHECK_ERR(hsmc_audit_decode(&H, V(buf, n - 3), &d), HSMC_ERR_FORMAT);
    buf[n - 6] = 0x62;
    buf[2] = 0x02; /* version 2 */
    CHECK_ERR(hsmc_audit_decode(&H, V(buf, n - 3), &d), HSMC_ERR_FORMAT);
    buf[2] = 0x01;
    buf[1] = 0x01; /* keys 1, 1: repeated / unsorted */
    CHECK_ERR(hsmc_audit_decode(&H, V(buf, n - 3), &d), HSMC_ERR_FORMAT);
    buf[1] = 0x00;
    CHECK_ERR(hsmc_audit_decode(&H, V(buf, n - 3), &d), HSMC_OK);

    CHECK(strcmp(hsmc_err_name(HSMC_ERR_AUDIT_CHAIN), "HSMC_ERR_AUDIT_CHAIN") == 0);
    CHECK(HSMC_ERR_MIN == HSMC_ERR_AUDIT_CHAIN);
    CHECK(strcmp(hsmc_audit_fault_name(HSMC_AUDIT_FAULT_PREV), "prev mismatch") == 0);
}

static void test_verify_args(void)
{
    hsmc_audit_verify_t *v = &VER;
    size_t used = 0;

    hsmc_audit_verify_init_key(v, &H, NULL);
    CHECK_ERR(hsmc_audit_verify_next(v, CHAIN, CHAIN_LEN, &used, NULL), HSMC_ERR_ARG);
    hsmc_audit_verify_init_spki(v, &H, V(NULL, 0));
    CHECK_ERR(hsmc_audit_verify_next(v, CHAIN, CHAIN_LEN, &used, NULL), HSMC_ERR_ARG);
    hsmc_audit_verify_init_spki(v, &H, V(SPKI, SPKI_LEN));
    CHECK_ERR(hsmc_audit_verify_next(v, CHAIN, 0, &used, NULL), HSMC_ERR_ARG);
    CHECK_ERR(hsmc_audit_verify_next(v, CHAIN, CHAIN_LEN, NULL, NULL), HSMC_ERR_ARG);
    CHECK(v->err == HSMC_OK); /* argument errors are not sticky */
    CHECK_ERR(hsmc_audit_verify_next(v, CHAIN, CHAIN_LEN, &used, NULL), HSMC_OK);
    /* Sticky after a broken record. */
    CHECK_ERR(hsmc_audit_verify_next(v, CHAIN + OFF[2], CHAIN_LEN - OFF[2], &used, NULL),
              HSMC_ERR_AUDIT_CHAIN);
    CHECK(used == 0 && v->count == 1 && v->fault == HSMC_AUDIT_FAULT_PREV);
    CHECK_ERR(hsmc_audit_verify_next(v, CHAIN + OFF[1], CHAIN_LEN - OFF[1], &used, NULL),
              HSMC_ERR_AUDIT_CHAIN);
    CHECK_ERR(hsmc_audit_verify_finish(v), HSMC_ERR_AUDIT_CHAIN);
    hsmc_audit_verify_free(v);
    /* A window that stops inside a record but holds RECORD_MAX bytes: too large. */
    {
        static uint8_t junk[HSMC_AUDIT_RECORD_MAX + 16];
        memset(junk, 0, sizeof junk);
        junk[0] = 0xd2;
        junk[1] = 0x84;
        junk[2] = 0x5a; /* bstr, 4-byte length */
        junk[3] = 0x00;
        junk[4] = 0x10; /* 1 MiB */
        hsmc_audit_verify_init_spki(v, &H, V(SPKI, SPKI_LEN));
        CHECK_ERR(hsmc_audit_verify_buf(v, junk, 40), HSMC_ERR_FORMAT);
        CHECK(v->fault == HSMC_AUDIT_FAULT_MALFORMED);
        hsmc_audit_verify_free(v);
    }
}

/* ---- tampering ------------------------------------------------------------------- */

static void build_cases(void)
{
    static uint8_t buf[FILE_CAP], extra[HSMC_AUDIT_RECORD_MAX];
    int order[NREC + 2];
    hsmc_audit_t *f = malloc(sizeof *f);
    hsmc_audit_record_t r;
    hsmc_cose_t *c = malloc(sizeof *c);
    size_t len, rl, j, xn = 0, step;
    int i, k, x;

    if (f == NULL || c == NULL)
        exit(2);
    add_case(CHAIN, CHAIN_LEN, -1, -1, "good chain");
    for (k = 0; k < NREC; k++) {
        rl = OFF[k + 1] - OFF[k];
        /* Flips: every byte of the first and last record, 16 spread over others. */
        step = (k == 0 || k == NREC - 1) ? 1 : rl / 16;
        for (j = 0; j < rl; j += step) {
            for (x = 0; x < 2; x++) {
                if (x == 1 && step == 1 && j % 8 != 0)
                    continue;
                memcpy(buf, CHAIN, CHAIN_LEN);
                buf[OFF[k] + j] ^= (uint8_t)(x == 0 ? 0x01 : 0x80);
                add_case(buf, CHAIN_LEN, k, -1, "flip rec %d byte %d", k, (int)j + 1000 * x);
            }
        }
        memcpy(buf, CHAIN, CHAIN_LEN);
        buf[OFF[k + 1] - 1] ^= 0xff;
        add_case(buf, CHAIN_LEN, k, -1, "flip rec %d last byte", k);

        /* Delete record k: the next one names the gap; deleting the last one is
         * invisible to the chain (documented: anchor the tail elsewhere). */
        for (i = 0, j = 0; i < NREC; i++)
            if (i != k)
                order[j++] = i;
        len = splice(buf, order, NREC - 1, NULL, 0);
        add_case(buf, len, k == NREC - 1 ? -1 : k, HSMC_AUDIT_FAULT_PREV, "delete rec %d", k);
        /* Swap k and k+1. */
        if (k + 1 < NREC) {
            for (i = 0; i < NREC; i++)
                order[i] = i;
            order[k] = k + 1;
            order[k + 1] = k;
            len = splice(buf, order, NREC, NULL, 0);
            add_case(buf, len, k, HSMC_AUDIT_FAULT_PREV, "swap rec %d and %d", k, k + 1);
        }
        /* Duplicate record k. */
        for (i = 0, j = 0; i < NREC; i++) {
            order[j++] = i;
            if (i == k)
                order[j++] = i;
        }
        len = splice(buf, order, NREC + 1, NULL, 0);
        add_case(buf, len, k + 1, HSMC_AUDIT_FAULT_PREV, "duplicate rec %d", k);

        /* Forged records at position k, chained correctly (right seq and prev):
         * signed by another key of the token, by a key elsewhere that has the
         * audit key's label, and a non-audit COSE_Sign1 of the audit key. */
        for (x = 0; x < 3; x++) {
            if (x < 2) {
                hsmc_audit_init(f, x == 0 ? &H : &H2, x == 0 ? &K_FORGER : &K_FAKE);
                if (k > 0)
                    REQUIRE(hsmc_hash(HSMC_HASH_SHA256, CHAIN + OFF[k - 1], OFF[k] - OFF[k - 1],
                                      f->prev) == HSMC_OK);
                f->seq = (uint64_t)k;
                fill_record(&r, k);
                r.device_id = hsmc_audit_text("forged-device");
                REQUIRE(hsmc_audit_sign(f, &r, extra, sizeof extra, &xn) == HSMC_OK);
                hsmc_audit_free(f);
            } else {
                hsmc_cose_init(c, &H);
                (void)hsmc_cose_set_content_type(c, "application/cbor");
                REQUIRE(hsmc_cose_sign1(c, &K_AUDIT, 0, V(NULL, 0), V("\xa0", 1), 0, extra,
                                        sizeof extra, &xn) == HSMC_OK);
                hsmc_cose_free(c);
            }
            for (i = 0, j = 0; i < NREC; i++) {
                if (i == k)
                    order[j++] = -1;
                order[j++] = i;
            }
            len = splice(buf, order, NREC + 1, extra, xn);
            add_case(buf, len, k,
                     x < 2 ? HSMC_AUDIT_FAULT_SIGNATURE : HSMC_AUDIT_FAULT_MALFORMED,
                     "insert forged %d at %d", x, k);
        }
    }
    /* Cut the file at every byte of the last record. */
    rl = OFF[NREC] - OFF[NREC - 1];
    for (j = 1; j < rl; j++)
        add_case(CHAIN, OFF[NREC - 1] + j, NREC - 1, HSMC_AUDIT_FAULT_TRUNCATED, "cut at %d+%d",
                 (int)OFF[NREC - 1], (int)j);
    add_case(CHAIN, OFF[NREC - 1], -1, -1, "cut before last");
    /* A file that begins mid-chain. */
    add_case(CHAIN + OFF[3], CHAIN_LEN - OFF[3], 0, HSMC_AUDIT_FAULT_PREV, "starts at rec %d", 3);
    /* Trailing garbage after a good chain. */
    memcpy(buf, CHAIN, CHAIN_LEN);
    buf[CHAIN_LEN] = 0xff;
    add_case(buf, CHAIN_LEN + 1, NREC, HSMC_AUDIT_FAULT_MALFORMED, "trailing 0xff");
    free(f);
    free(c);
}

static void test_tamper(void)
{
    double t0 = now_s();
    size_t i, flips = 0;
    unsigned by_fault[8] = {0};

    build_cases();
    for (i = 0; i < NCASES; i++) {
        /* The SPKI paths for every structural case and every 8th flip or cut. */
        int flip = strncmp(CASES[i].name, "flip", 4) == 0;
        int cut = strncmp(CASES[i].name, "cut", 3) == 0;
        run_case(&CASES[i], (!flip && !cut) || i % 8 == 0);
        flips += flip;
        if (CASES[i].got_fault < 8)
            by_fault[CASES[i].got_fault]++;
    }
    for (i = 0; i < 7; i++)
        fprintf(stderr, "  %-14s %u\n", hsmc_audit_fault_name((hsmc_audit_fault_t)i),
                by_fault[i]);
    fprintf(stderr, "  %lu cases (%lu byte flips), %.1f s\n", (unsigned long)NCASES,
            (unsigned long)flips, now_s() - t0);
}

/* ---- the independent checker ------------------------------------------------------- */

static void test_python_agrees(void)
{
    const char *src = hsmc_test_env("HSMC_TEST_SOURCE_DIR");
    double t0 = now_s();
    char path[600], line[512], want[128];
    size_t i, start, end, batch = 200, disagree = 0;
    char *cmd;
    size_t cmdcap;
    FILE *p;

    snprintf(path, sizeof path, "%s/audit-cases", DIR_);
    mkdir(path, 0700);
    cmdcap = 200 + strlen(src) + strlen(SPKI_PATH) + batch * (strlen(path) + 16);
    cmd = malloc(cmdcap);
    REQUIRE(cmd != NULL);
    for (start = 0; start < NCASES; start = end) {
        size_t off;
        end = start + batch < NCASES ? start + batch : NCASES;
        off = (size_t)snprintf(cmd, cmdcap, "/usr/bin/python3 %s/test/tools/audit_check.py verify %s",
                               src, SPKI_PATH);
        for (i = start; i < end; i++) {
            snprintf(path, sizeof path, "%s/audit-cases/%05lu.cbor", DIR_, (unsigned long)i);
            REQUIRE(hsmc_test_write_file(path, CASES[i].data, CASES[i].len));
            off += (size_t)snprintf(cmd + off, cmdcap - off, " %s", path);
        }
        p = popen(cmd, "r");
        REQUIRE(p != NULL);
        for (i = start; i < end; i++) {
            tcase_t *t = &CASES[i];
            if (fgets(line, sizeof line, p) == NULL) {
                CHECK(0);
                break;
            }
            if (t->err == HSMC_OK)
                snprintf(want, sizeof want, "ok %lu %lu", (unsigned long)t->got_index,
                         (unsigned long)t->got_index);
            else
                snprintf(want, sizeof want, "FAIL %lu %lu %s:", (unsigned long)t->got_index,
                         (unsigned long)t->got_offset, hsmc_audit_fault_name(t->got_fault));
            if (strncmp(line, want, strlen(want)) != 0) {
                fprintf(stderr, "  python disagrees on %s: C \"%s\", python %s", t->name, want,
                        line);
                disagree++;
            }
        }
        pclose(p);
    }
    free(cmd);
    fprintf(stderr, "  python checked %lu files, %lu disagreements, %.1f s\n",
            (unsigned long)NCASES, (unsigned long)disagree, now_s() - t0);
    CHECK(disagree == 0);
}

int main(void)
{
    size_t i;
    RUN(test_setup);
    RUN(test_sign_chain);
    RUN(test_verify_good);
    RUN(test_encode_decode);
    RUN(test_verify_args);
    RUN(test_resume);
    RUN(test_tamper);
    RUN(test_python_agrees);
    for (i = 0; i < NCASES; i++)
        free(CASES[i].data);
    free(CASES);
    hsmc_audit_free(&A);
    hsmc_close(&H2);
    hsmc_close(&H);
    return TEST_END();
}
