/**
 * @file ca.h
 * @brief A certificate authority whose key stays in the token: issuance
 *        from CSRs with fixed profiles, policy gates (roles, root
 *        ceremonies, name rules), an audit callback, certificates stored
 *        next to their keys, and CRLs.
 *
 * The CA decides every extension from the profile; from a CSR it takes
 * only the subject, the public key and the subject alternative names, and
 * only after the CSR's self-signature verified and every requested name
 * passed the profile's rules (a CSR with one name outside the rules is
 * refused as a whole, never trimmed). Serials are 16 random bytes from the
 * token RNG (positive, first byte 01..7f, so always 16 bytes in DER).
 *
 * Profiles and what they put in a certificate (all: SKI = SHA-1 of the
 * subjectPublicKey bits, AKI = the issuer's SKI, X.509 v3):
 *
 * | profile         | basicConstraints (critical) | keyUsage (critical)       | extKeyUsage |
 * |-----------------|-----------------------------|---------------------------|-------------|
 * | ca_root         | cA, pathLen if set          | keyCertSign, cRLSign      | -           |
 * | ca_intermediate | cA, pathLen (default 0)     | keyCertSign, cRLSign      | -           |
 * | mtls_server     | cA=FALSE                    | digitalSignature          | serverAuth  |
 * | mtls_client     | cA=FALSE                    | digitalSignature          | clientAuth  |
 * | signing         | cA=FALSE                    | digitalSignature          | codeSigning |
 *
 * subjectAltName: the CSR's, when every name passed the profile's rules
 * (hsmc_name_rules_t); every SAN kind is closed until the policy lists
 * allowed values.
 *
 * Signature hash by CA key: P-256 SHA-256, P-384 SHA-384, P-521 SHA-512,
 * RSA SHA-256 (PKCS#1 v1.5). AlgorithmIdentifiers follow RFC 5758 (no
 * parameters for ECDSA), which is one reason the TBSCertificate is written
 * here with mbedtls_asn1_write_* rather than by mbedtls_x509write_crt
 * (mbedTLS 2.28 writes a NULL parameter and cannot copy the issuer name
 * byte for byte).
 *
 * Memory: hsmc_ca_t is a caller-owned context (about 3 KB) holding the
 * bound CA key, the parsed CA certificate chain and the per-request
 * scratch; outputs go to caller buffers. mbedTLS allocates internally for
 * parsing (certificate, CSR) as configured by the integrator.
 *
 * Threads: one hsmc_ca_t serves one thread at a time.
 */
#ifndef HSMC_CA_H
#define HSMC_CA_H

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "hsmc/key.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Serial number length in bytes (128 bits). */
#define HSMC_CA_SERIAL_LEN 16u

/** Longest SubjectPublicKeyInfo handled (RSA-4096 is 550 bytes). */
#ifndef HSMC_CA_SPKI_MAX
#define HSMC_CA_SPKI_MAX 600
#endif

/** Signature buffer: mbedtls_pk_sign has no capacity argument in 2.28. */
#define HSMC_CA_SIG_MAX MBEDTLS_PK_SIGNATURE_MAX_SIZE

/* ---- Profiles, roles, operations ------------------------------------------ */

/** Certificate profiles. */
typedef enum hsmc_profile {
    HSMC_PROFILE_NONE = 0,
    HSMC_PROFILE_CA_ROOT,         /**< self-signed root */
    HSMC_PROFILE_CA_INTERMEDIATE, /**< subordinate CA */
    HSMC_PROFILE_MTLS_SERVER,     /**< TLS server leaf */
    HSMC_PROFILE_MTLS_CLIENT,     /**< TLS client leaf (device identity) */
    HSMC_PROFILE_SIGNING,         /**< code / document signing leaf */
    HSMC_PROFILE_COUNT
} hsmc_profile_t;

/** "ca_root", "ca_intermediate", "mtls_server", "mtls_client", "signing"; "?" otherwise. */
const char *hsmc_profile_name(hsmc_profile_t profile);
/** Parse a profile name. @return HSMC_OK or HSMC_ERR_ARG. */
hsmc_err_t hsmc_profile_parse(const char *name, hsmc_profile_t *profile);

/**
 * Process roles (HSMC_ROLE=ca|app|any for the CLI). What each may run:
 *
 * | operation       | ca  | app | any |
 * |-----------------|-----|-----|-----|
 * | ISSUE, CRL      | yes | no  | yes |
 * | CSR, CERT_STORE | yes | yes | yes |
 * | TLS             | no  | yes | yes |
 *
 * A CA process never authenticates TLS connections with its keys (a CA key
 * answering handshakes signs attacker-chosen data); an application
 * process never issues or revokes.
 */
typedef enum hsmc_role {
    HSMC_ROLE_ANY = 0, /**< development and tests: everything (root gate still applies) */
    HSMC_ROLE_CA,      /**< CA host */
    HSMC_ROLE_APP      /**< device, gateway, service */
} hsmc_role_t;

/** Operations the policy gates (and the audit callback reports). */
typedef enum hsmc_ca_op {
    HSMC_OP_ISSUE = 1, /**< issue a certificate */
    HSMC_OP_CRL,       /**< sign a CRL */
    HSMC_OP_CSR,       /**< create a CSR with a token key */
    HSMC_OP_CERT_STORE,/**< store a certificate on the token */
    HSMC_OP_TLS        /**< authenticate TLS with a token key */
} hsmc_ca_op_t;

/** "ca", "app", "any". */
const char *hsmc_role_name(hsmc_role_t role);
/** Parse "ca", "app" or "any" (the HSMC_ROLE value). NULL or "" gives ANY.
 *  @return HSMC_OK or HSMC_ERR_CONFIG (unknown role). */
hsmc_err_t hsmc_role_parse(const char *text, hsmc_role_t *role);
/** "issue", "crl", "csr", "cert-store", "tls". */
const char *hsmc_ca_op_name(hsmc_ca_op_t op);

/* ---- Policy -------------------------------------------------------------- */

/* SAN kinds a profile may require (hsmc_name_rules_t.require). */
#define HSMC_REQ_DNS 0x1u
#define HSMC_REQ_IP 0x2u
#define HSMC_REQ_URI 0x4u
#define HSMC_REQ_EMAIL 0x8u

/* EC curves (hsmc_profile_rules_t.curves). */
#define HSMC_CURVE_P256 0x1u
#define HSMC_CURVE_P384 0x2u
#define HSMC_CURVE_P521 0x4u

/**
 * Which names a CSR may carry. Lists are comma-separated, matched as
 * described; NULL or "" allows no SAN of that kind; "*" allows any
 * well-formed value of that kind.
 *  - dns:   suffixes, case-insensitive. "example.com" allows example.com
 *           and every name below it; ".example.com" only names below it.
 *           Names must be LDH labels; wildcards ("*.x") are refused.
 *  - ip:    CIDR ranges, "10.0.0.0/8,192.0.2.7/32,fd00::/8".
 *  - uri:   prefixes, case-sensitive, e.g. "spiffe://example.org/device/".
 *  - email: domains after the '@', case-insensitive.
 *  - cn:    when set, every subject commonName must match this glob ('*'
 *           is any run of characters, case-sensitive) and one must exist.
 *  - require: HSMC_REQ_* kinds; at least one SAN of these kinds must be
 *           present (0: SANs optional).
 * Other SAN kinds (otherName, directoryName, registeredID, ...) are
 * always refused.
 */
typedef struct hsmc_name_rules {
    const char *dns;
    const char *ip;
    const char *uri;
    const char *email;
    const char *cn;
    unsigned require;
} hsmc_name_rules_t;

/** Rules of one profile. */
typedef struct hsmc_profile_rules {
    unsigned days;          /**< validity when the request gives none */
    unsigned max_days;      /**< longest validity a request may ask for */
    int path_len;           /**< CA profiles: pathLenConstraint, -1 = none */
    unsigned rsa_min_bits;  /**< smallest RSA modulus (never below 2048) */
    unsigned curves;        /**< HSMC_CURVE_* allowed for subject keys */
    hsmc_name_rules_t names;/**< SAN and CN rules */
} hsmc_profile_rules_t;

/** One audit record per CA operation, granted or refused. Pointers are
 *  valid only during the callback. */
typedef struct hsmc_audit_rec {
    int64_t time;             /**< seconds since 1970 (UTC), -1 when the clock is unset */
    const char *who;          /**< hsmc_ca_policy_t.operator_id, "" when unset */
    hsmc_role_t role;
    hsmc_ca_op_t op;
    const char *profile;      /**< ISSUE: profile name; "" otherwise */
    const char *key_label;    /**< the CA key's label */
    const char *ceremony;     /**< ceremony reference, "" when none */
    const uint8_t *serial;    /**< ISSUE: certificate serial; CRL: cRLNumber bytes; NULL when refused first */
    size_t serial_len;
    const uint8_t *subject;   /**< ISSUE: subject Name DER when known, else NULL */
    size_t subject_len;
    hsmc_err_t result;        /**< HSMC_OK or why it failed */
    const char *detail;       /**< the refusal's rule and reason, "" on success */
} hsmc_audit_rec_t;

/** Audit callback: called once per CA operation, after it ended. */
typedef void (*hsmc_audit_fn)(void *user, const hsmc_audit_rec_t *rec);

/**
 * The CA policy. Fill it with hsmc_ca_policy_init() and change fields;
 * strings are borrowed (keep them alive while the policy is in use).
 *
 * Root gate: an operation with a root key (issuing ca_root, or issuing or
 * signing a CRL with a CA whose certificate is self-signed) needs
 * allow_root AND a non-empty ceremony reference (the CLI: environment
 * HSMC_ALLOW_ROOT_CA=true and --ceremony REF). Both appear in the audit
 * record.
 */
typedef struct hsmc_ca_policy {
    hsmc_role_t role;             /**< default HSMC_ROLE_ANY */
    int allow_root;               /**< 1 allows root-key operations (default 0) */
    const char *ceremony;         /**< root ceremony reference (default NULL) */
    const char *operator_id;      /**< who runs the process, for audit (default NULL) */
    hsmc_profile_rules_t profile[HSMC_PROFILE_COUNT]; /**< indexed by hsmc_profile_t */
    hsmc_audit_fn audit;          /**< optional */
    void *audit_user;
} hsmc_ca_policy_t;

/**
 * Defaults: role ANY, root not allowed, no ceremony, and per profile
 * (days / max_days, RSA minimum, curves, path length, SAN requirement):
 *   ca_root          7305 / 9131, RSA 3072, P-384 P-521, no pathLen, no SANs
 *   ca_intermediate  3652 / 5479, RSA 2048, P-256..P-521, pathLen 0, no SANs
 *   mtls_server       397 /  397, RSA 2048, P-256..P-521, require DNS or IP
 *   mtls_client       365 /  825, RSA 2048, P-256..P-521, nothing required
 *   signing          1095 / 1826, RSA 2048, P-256..P-521, nothing required
 * All name lists start empty (no SANs allowed) until the caller sets them.
 */
void hsmc_ca_policy_init(hsmc_ca_policy_t *policy);

/**
 * Parse an allow flag ("true", "1", "yes" / "false", "0", "no", NULL or
 * "" = false), e.g. the value of HSMC_ALLOW_ROOT_CA.
 * @return HSMC_OK or HSMC_ERR_CONFIG (anything else, so a typo never
 *         silently allows or denies).
 */
hsmc_err_t hsmc_ca_parse_flag(const char *text, int *flag);

/**
 * May the process run `op`? `root_key` says whether the operation uses a
 * root CA key. Refusals fill h's detail with the rule ("role: app may not
 * issue", "root: ... HSMC_ALLOW_ROOT_CA", "root: no ceremony reference").
 * For the binding's CSR/TLS helpers and the CLI; hsmc_ca_* call it
 * themselves.
 * @return HSMC_OK, HSMC_ERR_ARG, HSMC_ERR_POLICY.
 */
hsmc_err_t hsmc_ca_permit(hsmc_t *h, const hsmc_ca_policy_t *policy, hsmc_ca_op_t op,
                          int root_key);

/* ---- The CA context ------------------------------------------------------ */

/** A CA: its token key bound to mbedTLS, its certificate chain, scratch.
 *  Allocate it yourself; treat every field as private. */
typedef struct hsmc_ca {
    hsmc_t *h;
    const hsmc_ca_policy_t *policy;
    hsmc_key_t key;                 /* CA key (copy of the caller's handle) */
    mbedtls_pk_context pk;          /* the CA key, signing in the token */
    int bound;                      /* pk holds a pool entry */
    int has_cert;                   /* chain holds the CA certificate */
    int is_root;                    /* no certificate yet, or a self-signed one */
    mbedtls_x509_crt chain;         /* CA certificate first, then its issuers */
    uint8_t ski[32];                /* CA key identifier (its SKI, or computed) */
    size_t ski_len;
    int64_t not_after;              /* CA certificate's notAfter (seconds) */
    mbedtls_x509_csr csr;           /* the request being processed */
    uint8_t sig[HSMC_CA_SIG_MAX];   /* signature of the object being made */
    uint8_t spki[HSMC_CA_SPKI_MAX]; /* key export / SKI scratch */
    uint8_t serial[HSMC_CA_SERIAL_LEN];
} hsmc_ca_t;

/** Prepare a context. Cannot fail. */
void hsmc_ca_init(hsmc_ca_t *ca);

/**
 * Open a CA with its token key and certificate.
 * @param chain   DER of the CA certificate, optionally followed by the
 *                certificates above it (DER, concatenated; convert PEM with
 *                hsmc_ca_pem_to_der). NULL/0 opens a root in creation mode:
 *                only ca_root issuance (self-signed) is possible; the root
 *                it issues becomes the context's certificate.
 * @param policy  borrowed for the context's lifetime.
 * The context keeps one of the HSMC_X509_PK_POOL bound-key entries until
 * hsmc_ca_free; h and key must stay open as long.
 * The certificate must be a CA certificate (cA=TRUE; keyCertSign when
 * keyUsage is present) whose public key is the key's.
 * @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_STATE (already open); HSMC_ERR_FORMAT
 *   (certificate not parseable); HSMC_ERR_CERT_KEY (certificate is not the
 *   key's); HSMC_ERR_POLICY ("issuer-not-ca"); hsmc_pk_bind errors
 *   (HSMC_ERR_LIMIT pool full, HSMC_ERR_UNSUPPORTED key type).
 */
hsmc_err_t hsmc_ca_open(hsmc_ca_t *ca, hsmc_t *h, const hsmc_key_t *key, const uint8_t *chain,
                        size_t chain_len, const hsmc_ca_policy_t *policy);

/** Unbind the key and free the parsed certificates. Accepts NULL and closed contexts. */
void hsmc_ca_free(hsmc_ca_t *ca);

/** The CA certificate (DER view into the context), e.g. right after ca_root issuance.
 *  @return HSMC_OK, HSMC_ERR_ARG, HSMC_ERR_STATE (no certificate yet). */
hsmc_err_t hsmc_ca_cert(const hsmc_ca_t *ca, const uint8_t **der, size_t *len);

/** What to issue. */
typedef struct hsmc_issue_req {
    hsmc_profile_t profile;
    const uint8_t *csr;    /**< DER, or PEM ("CERTIFICATE REQUEST" / "NEW CERTIFICATE REQUEST") */
    size_t csr_len;
    const char *subject;   /**< ca_root without a CSR: "CN=...,O=...,C=..." (mbedTLS syntax);
                                neither given: the current CA certificate's subject (renewal) */
    int64_t not_before;    /**< seconds since 1970; 0: now */
    unsigned days;         /**< 0: the profile's days; at most its max_days */
} hsmc_issue_req_t;

/** Facts about an issued certificate. */
typedef struct hsmc_issued {
    uint8_t serial[HSMC_CA_SERIAL_LEN];
    int64_t not_before;
    int64_t not_after;
} hsmc_issued_t;

/**
 * Issue a certificate (DER) into der/cap.
 *
 * Order of checks (the first failing one is reported): role and root gate
 * (HSMC_ERR_POLICY); CSR decoding (HSMC_ERR_CSR: garbage, truncated PEM,
 * trailing bytes, malformed attributes; HSMC_ERR_UNSUPPORTED: a key
 * algorithm mbedTLS cannot parse); self-signature (HSMC_ERR_SIGNATURE;
 * MD5/SHA-1 signed CSRs HSMC_ERR_POLICY "csr-hash"); CA powers requested
 * for a leaf: cA=TRUE, keyCertSign or cRLSign (HSMC_ERR_CSR_EXT); subject
 * key size/curve (HSMC_ERR_KEY_WEAK); names: empty subject, SAN kinds and
 * values, CN glob, required SANs (HSMC_ERR_POLICY "san-dns", "san-ip",
 * "san-uri", "san-email", "san-kind", "san-required", "cn", "subject");
 * validity (HSMC_ERR_POLICY "validity": beyond max_days, or after the CA
 * certificate's notAfter when asked explicitly (the default is cut to
 * it); CA certificate expired). ca_intermediate under an issuer with
 * pathLen 0 is HSMC_ERR_POLICY "issuer-pathlen"; a larger profile path
 * length is cut to fit the issuer's. A ca_root CSR must carry the CA's
 * own key (HSMC_ERR_CERT_KEY).
 *
 * Requested extended key usages and other requested extensions are
 * ignored: the profile decides. The audit callback gets one record.
 *
 * @param der   output buffer; NULL asks for an upper bound of the length
 *              in *len (nothing is checked, signed or audited).
 * @param info  optional: serial and validity of the new certificate.
 * @return HSMC_OK; the errors above; HSMC_ERR_BUFFER (der too small: the
 *   bound is in *len; nothing was signed when the TBS did not fit);
 *   HSMC_ERR_STATE (not open; a non-root profile on a CA without
 *   certificate); token errors from signing and the RNG.
 */
hsmc_err_t hsmc_ca_issue(hsmc_ca_t *ca, const hsmc_issue_req_t *req, uint8_t *der, size_t cap,
                         size_t *len, hsmc_issued_t *info);

/**
 * PEM chain for a certificate the CA issued: the leaf, then the CA
 * certificate and the certificates above it, without self-signed roots
 * (relying parties hold those). Like hsmc_pem_write, the text is
 * NUL-terminated and *out_len excludes the NUL, so out needs *out_len + 1
 * bytes; size-only pass with out NULL (exact).
 * @return HSMC_OK, HSMC_ERR_ARG, HSMC_ERR_STATE, HSMC_ERR_BUFFER (*out_len set).
 */
hsmc_err_t hsmc_ca_chain_pem(const hsmc_ca_t *ca, const uint8_t *leaf, size_t leaf_len,
                             char *out, size_t cap, size_t *out_len);

/**
 * Concatenate the DER of every PEM block with `label` in `pem` (other
 * text between blocks is skipped). Size-only pass with der NULL.
 * @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_FORMAT (no block, a truncated or
 *         malformed block); HSMC_ERR_BUFFER (*der_len set).
 */
hsmc_err_t hsmc_ca_pem_to_der(const char *label, const char *pem, size_t len, uint8_t *der,
                              size_t cap, size_t *der_len);

/* ---- CRLs ---------------------------------------------------------------- */

/** CRLReason values (RFC 5280 5.3.1); 0 = unspecified (not written). */
#define HSMC_CRL_REASON_UNSPECIFIED 0u
#define HSMC_CRL_REASON_KEY_COMPROMISE 1u
#define HSMC_CRL_REASON_CA_COMPROMISE 2u
#define HSMC_CRL_REASON_AFFILIATION_CHANGED 3u
#define HSMC_CRL_REASON_SUPERSEDED 4u
#define HSMC_CRL_REASON_CESSATION 5u
#define HSMC_CRL_REASON_HOLD 6u
#define HSMC_CRL_REASON_PRIVILEGE_WITHDRAWN 9u
#define HSMC_CRL_REASON_AA_COMPROMISE 10u

/** Longest serial a CRL entry may carry (RFC 5280: 20 octets). */
#define HSMC_CRL_SERIAL_MAX 20u

/** One revoked certificate. */
typedef struct hsmc_revoked {
    uint8_t serial[HSMC_CRL_SERIAL_MAX]; /**< big-endian magnitude */
    size_t serial_len;                   /**< 1..20 */
    int64_t when;                        /**< revocation time; 0: the CRL's thisUpdate */
    unsigned reason;                     /**< HSMC_CRL_REASON_* */
} hsmc_revoked_t;

/**
 * Parse one line of a revocation list: "SERIAL [TIME] [REASON]", where
 * SERIAL is hex ("0a1b2c", "0A:1B:2C", optional "0x"), TIME is
 * YYYYMMDDhhmmssZ and REASON one of keyCompromise, cACompromise,
 * affiliationChanged, superseded, cessationOfOperation, certificateHold,
 * privilegeWithdrawn, aACompromise, unspecified. Blank lines and lines
 * starting with '#' give HSMC_ERR_OBJECT_NOT_FOUND (skip them).
 * @return HSMC_OK; HSMC_ERR_OBJECT_NOT_FOUND (nothing on the line);
 *         HSMC_ERR_FORMAT (the line is not of that form).
 */
hsmc_err_t hsmc_crl_parse_line(const char *line, size_t len, hsmc_revoked_t *out);

/** What a CRL says. */
typedef struct hsmc_crl_req {
    const hsmc_revoked_t *revoked; /**< may be NULL when count is 0 */
    size_t count;
    int64_t this_update;           /**< 0: now */
    unsigned next_update_hours;    /**< 0: 168 (7 days) */
    uint64_t number;               /**< cRLNumber; 0: this_update (seconds), which grows
                                        as long as CRLs are at least a second apart */
} hsmc_crl_req_t;

/**
 * Make and sign a CRL v2 with the CA key: issuer = the CA certificate's
 * subject (byte for byte), thisUpdate, nextUpdate, the revoked serials
 * with their dates (and reasons), and the extensions AKI (= the CA's SKI)
 * and cRLNumber. Root CAs pass the root gate. The audit callback gets one
 * record (serial = cRLNumber).
 * @param der NULL asks for an upper bound in *len.
 * @return HSMC_OK; HSMC_ERR_ARG (a serial of 0 or more than 20 bytes);
 *   HSMC_ERR_STATE (CA without certificate); HSMC_ERR_POLICY;
 *   HSMC_ERR_BUFFER; token errors.
 */
hsmc_err_t hsmc_ca_crl(hsmc_ca_t *ca, const hsmc_crl_req_t *req, uint8_t *der, size_t cap,
                       size_t *len);

/* ---- Certificates on the token ------------------------------------------- */

/** Scratch for hsmc_cert_store (keeps the large parts off the stack). */
typedef struct hsmc_cert_work {
    uint8_t spki[HSMC_CA_SPKI_MAX];
    CK_ATTRIBUTE t[12];
} hsmc_cert_work_t;

/**
 * Store a certificate (DER) on the token next to its key: CKO_CERTIFICATE,
 * CKC_X_509, token object, CKA_ID and CKA_LABEL of the key, CKA_SUBJECT,
 * CKA_ISSUER, CKA_SERIAL_NUMBER (DER INTEGER) and CKA_VALUE. A certificate
 * whose public key is not the key's is refused. Certificates stored
 * earlier for the same key (same CKA_ID) are destroyed once the new one
 * exists, so a failure leaves the old one or (at worst) both, never none.
 * @return HSMC_OK; HSMC_ERR_ARG (also: key without CKA_ID); HSMC_ERR_FORMAT
 *   (not exactly one DER X.509 certificate); HSMC_ERR_CERT_KEY; token errors.
 */
hsmc_err_t hsmc_cert_store(hsmc_t *h, const hsmc_key_t *key, const uint8_t *der, size_t len,
                           hsmc_cert_work_t *work);

/**
 * Load the certificate stored for `key` (by CKA_ID). Size-only pass with
 * der NULL.
 * @return HSMC_OK; HSMC_ERR_OBJECT_NOT_FOUND; HSMC_ERR_OBJECT_AMBIGUOUS;
 *   HSMC_ERR_BUFFER (*len set); token errors.
 */
hsmc_err_t hsmc_cert_load(hsmc_t *h, const hsmc_key_t *key, uint8_t *der, size_t cap,
                          size_t *len);

/** Load the certificate labelled `label`; as hsmc_cert_load. */
hsmc_err_t hsmc_cert_load_label(hsmc_t *h, const char *label, uint8_t *der, size_t cap,
                                size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_CA_H */
