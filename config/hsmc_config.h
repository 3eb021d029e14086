/*
 * hsmc compile-time configuration.
 *
 * Every knob is #ifndef-defaulted. Three ways to override, in this order:
 *   1. -DHSMC_CONFIG_FILE='"my_hsmc_config.h"' includes that file first;
 *   2. Zephyr/Kconfig: CONFIG_HSMC_<NAME> maps onto HSMC_<NAME>;
 *   3. plain -DHSMC_<NAME>=value on the compiler command line.
 * The Kconfig symbol, the CMake cache variable and the macro share one name.
 */
#ifndef HSMC_CONFIG_H
#define HSMC_CONFIG_H

#ifdef HSMC_CONFIG_FILE
#include HSMC_CONFIG_FILE
#endif

/* Kconfig (Zephyr) symbols: CONFIG_HSMC_X -> HSMC_X unless already set. */
#if defined(CONFIG_HSMC_MAX_SESSIONS) && !defined(HSMC_MAX_SESSIONS)
#define HSMC_MAX_SESSIONS CONFIG_HSMC_MAX_SESSIONS
#endif
#if defined(CONFIG_HSMC_MAX_SLOTS) && !defined(HSMC_MAX_SLOTS)
#define HSMC_MAX_SLOTS CONFIG_HSMC_MAX_SLOTS
#endif
#if defined(CONFIG_HSMC_MAX_LABEL_LEN) && !defined(HSMC_MAX_LABEL_LEN)
#define HSMC_MAX_LABEL_LEN CONFIG_HSMC_MAX_LABEL_LEN
#endif
#if defined(CONFIG_HSMC_MAX_ID_LEN) && !defined(HSMC_MAX_ID_LEN)
#define HSMC_MAX_ID_LEN CONFIG_HSMC_MAX_ID_LEN
#endif
#if defined(CONFIG_HSMC_MAX_OBJECTS) && !defined(HSMC_MAX_OBJECTS)
#define HSMC_MAX_OBJECTS CONFIG_HSMC_MAX_OBJECTS
#endif
#if defined(CONFIG_HSMC_MAX_MECHANISMS) && !defined(HSMC_MAX_MECHANISMS)
#define HSMC_MAX_MECHANISMS CONFIG_HSMC_MAX_MECHANISMS
#endif
#if defined(CONFIG_HSMC_MAX_PIN_LEN) && !defined(HSMC_MAX_PIN_LEN)
#define HSMC_MAX_PIN_LEN CONFIG_HSMC_MAX_PIN_LEN
#endif
#if defined(CONFIG_HSMC_MAX_PATH_LEN) && !defined(HSMC_MAX_PATH_LEN)
#define HSMC_MAX_PATH_LEN CONFIG_HSMC_MAX_PATH_LEN
#endif
#if defined(CONFIG_HSMC_URI_MAX_LEN) && !defined(HSMC_URI_MAX_LEN)
#define HSMC_URI_MAX_LEN CONFIG_HSMC_URI_MAX_LEN
#endif
#if defined(CONFIG_HSMC_DETAIL_LEN) && !defined(HSMC_DETAIL_LEN)
#define HSMC_DETAIL_LEN CONFIG_HSMC_DETAIL_LEN
#endif
#if defined(CONFIG_HSMC_MAX_MODULES) && !defined(HSMC_MAX_MODULES)
#define HSMC_MAX_MODULES CONFIG_HSMC_MAX_MODULES
#endif
#if defined(CONFIG_HSMC_MODULE_MUTEX_POOL) && !defined(HSMC_MODULE_MUTEX_POOL)
#define HSMC_MODULE_MUTEX_POOL CONFIG_HSMC_MODULE_MUTEX_POOL
#endif
#if defined(CONFIG_HSMC_PORT_MUTEX_BYTES) && !defined(HSMC_PORT_MUTEX_BYTES)
#define HSMC_PORT_MUTEX_BYTES CONFIG_HSMC_PORT_MUTEX_BYTES
#endif
#if defined(CONFIG_HSMC_RECOVER_RETRIES) && !defined(HSMC_RECOVER_RETRIES)
#define HSMC_RECOVER_RETRIES CONFIG_HSMC_RECOVER_RETRIES
#endif
#if defined(CONFIG_HSMC_SESSION_WAIT_MS) && !defined(HSMC_SESSION_WAIT_MS)
#define HSMC_SESSION_WAIT_MS CONFIG_HSMC_SESSION_WAIT_MS
#endif
#if defined(CONFIG_HSMC_PROBE_RSA_BITS) && !defined(HSMC_PROBE_RSA_BITS)
#define HSMC_PROBE_RSA_BITS CONFIG_HSMC_PROBE_RSA_BITS
#endif
#if defined(CONFIG_HSMC_LOG_LEVEL) && !defined(HSMC_LOG_LEVEL)
#define HSMC_LOG_LEVEL CONFIG_HSMC_LOG_LEVEL
#endif
#if defined(CONFIG_HSMC_CBOR_MAX_DEPTH) && !defined(HSMC_CBOR_MAX_DEPTH)
#define HSMC_CBOR_MAX_DEPTH CONFIG_HSMC_CBOR_MAX_DEPTH
#endif
#if defined(CONFIG_HSMC_COSE_SCRATCH_LEN) && !defined(HSMC_COSE_SCRATCH_LEN)
#define HSMC_COSE_SCRATCH_LEN CONFIG_HSMC_COSE_SCRATCH_LEN
#endif
#if defined(CONFIG_HSMC_COSE_CRYPTO_LEN) && !defined(HSMC_COSE_CRYPTO_LEN)
#define HSMC_COSE_CRYPTO_LEN CONFIG_HSMC_COSE_CRYPTO_LEN
#endif
#if defined(CONFIG_HSMC_X509_PK_POOL) && !defined(HSMC_X509_PK_POOL)
#define HSMC_X509_PK_POOL CONFIG_HSMC_X509_PK_POOL
#endif
/* Booleans: Kconfig leaves a disabled bool undefined, so map both ways. */
#if defined(CONFIG_HSMC) && !defined(HSMC_THREADS)
#ifdef CONFIG_HSMC_THREADS
#define HSMC_THREADS 1
#else
#define HSMC_THREADS 0
#endif
#endif
#if defined(CONFIG_HSMC) && !defined(HSMC_ASSERTS)
#ifdef CONFIG_HSMC_ASSERTS
#define HSMC_ASSERTS 1
#else
#define HSMC_ASSERTS 0
#endif
#endif

/* ---- Limits (each sizes a fixed array in a context) ---------------- */

/** Sessions in the pool of one hsmc_t (concurrent operations). */
#ifndef HSMC_MAX_SESSIONS
#define HSMC_MAX_SESSIONS 4
#endif

/** Slots one C_GetSlotList may report; more is HSMC_ERR_LIMIT. */
#ifndef HSMC_MAX_SLOTS
#define HSMC_MAX_SLOTS 16
#endif

/** Longest object label (bytes, without NUL). */
#ifndef HSMC_MAX_LABEL_LEN
#define HSMC_MAX_LABEL_LEN 64
#endif

/** Longest CKA_ID (bytes). */
#ifndef HSMC_MAX_ID_LEN
#define HSMC_MAX_ID_LEN 32
#endif

/** Object handles fetched per C_FindObjects call (and per lookup). */
#ifndef HSMC_MAX_OBJECTS
#define HSMC_MAX_OBJECTS 16
#endif

/** Mechanisms one C_GetMechanismList may report; more is HSMC_ERR_LIMIT. */
#ifndef HSMC_MAX_MECHANISMS
#define HSMC_MAX_MECHANISMS 128
#endif

/** Longest PIN (bytes). */
#ifndef HSMC_MAX_PIN_LEN
#define HSMC_MAX_PIN_LEN 64
#endif

/** Longest PIN file path / env variable name kept for re-login. */
#ifndef HSMC_MAX_PATH_LEN
#define HSMC_MAX_PATH_LEN 256
#endif

/** Longest PKCS#11 URI the parser accepts (its in-place buffer). */
#ifndef HSMC_URI_MAX_LEN
#define HSMC_URI_MAX_LEN 512
#endif

/** Size of the human-readable detail text kept in the context. */
#ifndef HSMC_DETAIL_LEN
#define HSMC_DETAIL_LEN 160
#endif

/** Distinct modules loaded at once in a process (shared-init registry). */
#ifndef HSMC_MAX_MODULES
#define HSMC_MAX_MODULES 4
#endif

/**
 * Mutexes hsmc can hand to a module through C_Initialize's callbacks.
 * 0 (default): pass CKF_OS_LOCKING_OK without callbacks, so the module
 * uses its own OS locking. >0: also pass callbacks backed by a fixed pool
 * of this many port mutexes, for firmware tokens that have no locking.
 */
#ifndef HSMC_MODULE_MUTEX_POOL
#define HSMC_MODULE_MUTEX_POOL 0
#endif

/** Bytes reserved for one port mutex inside contexts. */
#ifndef HSMC_PORT_MUTEX_BYTES
#define HSMC_PORT_MUTEX_BYTES 64
#endif

/** Times an operation is retried after a lost session or token. */
#ifndef HSMC_RECOVER_RETRIES
#define HSMC_RECOVER_RETRIES 2
#endif

/** How long a caller waits for a free pool session before HSMC_ERR_BUSY. */
#ifndef HSMC_SESSION_WAIT_MS
#define HSMC_SESSION_WAIT_MS 5000
#endif

/** RSA key size used for probe keys (session objects, destroyed after). */
#ifndef HSMC_PROBE_RSA_BITS
#define HSMC_PROBE_RSA_BITS 2048
#endif

/**
 * Deepest nesting of CBOR arrays/maps the decoder accepts (8: eight
 * nested arrays pass, nine fail). Sizes a counter stack inside every
 * hsmc_cbor_dec_t and inside hsmc_cbor_skip()'s frame. A COSE_Encrypt
 * with recipients nests 4 deep.
 */
#ifndef HSMC_CBOR_MAX_DEPTH
#define HSMC_CBOR_MAX_DEPTH 8
#endif

/**
 * Scratch bytes in every hsmc_cose_t (and stream): holds the AES-GCM
 * Enc_structure of COSE_Encrypt0/COSE_Encrypt, so their external AAD may
 * be this minus 32 bytes; the Sig_structure of EdDSA signatures; and the
 * output of an RSA unwrap through C_Decrypt (the modulus size: 512 covers
 * RSA-4096).
 */
#ifndef HSMC_COSE_SCRATCH_LEN
#define HSMC_COSE_SCRATCH_LEN 512
#endif

/**
 * Bytes reserved in every hsmc_cose_t for mbedTLS's AES-GCM or SHA-2
 * context (opaque storage, so hsmc's headers need no mbedTLS header).
 * mbedTLS 2.28 needs 424 on 64-bit hosts, 400 on Cortex-M; hsmc_cose.c
 * does not compile when the integrator's mbedTLS (e.g. an alternative GCM
 * implementation) needs more.
 */
#ifndef HSMC_COSE_CRYPTO_LEN
#define HSMC_COSE_CRYPTO_LEN 512
#endif

/**
 * Token keys bound to mbedTLS at once (x509/, hsmc_pk_bind): a static pool
 * of this many key contexts, each holding the public key (an
 * mbedtls_ecp_keypair or mbedtls_rsa_context, a few hundred bytes) and the
 * token key's handle. A CSR or certificate issuance holds one entry while
 * it runs, a TLS configuration one for as long as it is in use.
 */
#ifndef HSMC_X509_PK_POOL
#define HSMC_X509_PK_POOL 4
#endif

/* ---- Features ------------------------------------------------------ */

/** 1: the session pool and module registry take port mutexes. */
#ifndef HSMC_THREADS
#define HSMC_THREADS 1
#endif

/** Lowest level passed to the log callback (0 error .. 3 debug);
 *  -1 compiles logging out entirely. */
#ifndef HSMC_LOG_LEVEL
#define HSMC_LOG_LEVEL 3
#endif

/** 1: HSMC_ASSERT checks internal invariants (tests); 0 on firmware. */
#ifndef HSMC_ASSERTS
#define HSMC_ASSERTS 0
#endif

#if HSMC_MAX_SESSIONS < 1 || HSMC_MAX_SLOTS < 1 || HSMC_MAX_OBJECTS < 1
#error "hsmc: HSMC_MAX_SESSIONS, HSMC_MAX_SLOTS and HSMC_MAX_OBJECTS must be >= 1"
#endif
#if HSMC_CBOR_MAX_DEPTH < 4 || HSMC_CBOR_MAX_DEPTH > 64
#error "hsmc: HSMC_CBOR_MAX_DEPTH must be between 4 (COSE_Encrypt nests 4 deep) and 64"
#endif
#if HSMC_COSE_SCRATCH_LEN < 128
#error "hsmc: HSMC_COSE_SCRATCH_LEN must be >= 128"
#endif
#if HSMC_COSE_CRYPTO_LEN < 64
#error "hsmc: HSMC_COSE_CRYPTO_LEN must be >= 64"
#endif
#if HSMC_X509_PK_POOL < 1
#error "hsmc: HSMC_X509_PK_POOL must be >= 1"
#endif
#if HSMC_DETAIL_LEN < 32
#error "hsmc: HSMC_DETAIL_LEN must be >= 32"
#endif

#endif /* HSMC_CONFIG_H */
