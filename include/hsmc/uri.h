/**
 * @file uri.h
 * @brief PKCS#11 URI parser (RFC 7512), in place on a fixed buffer.
 *
 * hsmc_uri_parse() copies the text into the struct's own buffer and decodes
 * percent-escapes there; every field below points into that buffer (or is
 * NULL when absent), so the hsmc_uri_t must outlive the pointers taken
 * from it. No allocation.
 *
 * Accepted path attributes: token, manufacturer, serial, model,
 * library-manufacturer, library-description, library-version,
 * slot-description, slot-manufacturer, slot-id, object, id, type.
 * Accepted query attributes: module-name, module-path, pin-source,
 * pin-value. Anything else, a duplicate attribute, a bad or truncated
 * percent-escape, a value longer than its PKCS#11 field, or a text longer
 * than HSMC_URI_MAX_LEN is rejected with HSMC_ERR_URI and err_msg/err_off
 * say what and where.
 */
#ifndef HSMC_URI_H
#define HSMC_URI_H

#include "hsmc/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hsmc_uri {
    /* Path attributes (decoded, NUL-terminated), NULL when absent. */
    const char *token;                /**< CK_TOKEN_INFO label (<= 32 bytes) */
    const char *manufacturer;         /**< token manufacturerID (<= 32) */
    const char *serial;               /**< token serialNumber (<= 16) */
    const char *model;                /**< token model (<= 16) */
    const char *library_manufacturer; /**< CK_INFO manufacturerID (<= 32) */
    const char *library_description;  /**< CK_INFO libraryDescription (<= 32) */
    const char *library_version;      /**< "M" or "M.m" as written */
    const char *slot_description;     /**< CK_SLOT_INFO slotDescription (<= 64) */
    const char *slot_manufacturer;    /**< CK_SLOT_INFO manufacturerID (<= 32) */
    const char *object;               /**< CKA_LABEL */
    const uint8_t *id;                /**< CKA_ID bytes (may contain NUL) */
    size_t id_len;                    /**< length of id */
    int has_slot_id;                  /**< 1 when slot-id was given */
    CK_SLOT_ID slot_id;               /**< decimal slot-id */
    int has_type;                     /**< 1 when type was given */
    CK_OBJECT_CLASS type;             /**< public, private, cert, secret-key, data */
    /* Query attributes. */
    const char *module_name;          /**< module-name */
    const char *module_path;          /**< module-path */
    const char *pin_source;           /**< pin-source, e.g. "file:/run/pin" */
    const char *pin_value;            /**< pin-value (never log it) */
    /* Error report of the last failed parse. */
    const char *err_msg;              /**< static text, NULL after success */
    size_t err_off;                   /**< byte offset in the input */
    /* Storage (private). */
    char buf[HSMC_URI_MAX_LEN + 1];
} hsmc_uri_t;

/** Zero the struct: every field absent. Cannot fail. */
void hsmc_uri_init(hsmc_uri_t *uri);

/**
 * Parse a PKCS#11 URI.
 * @param uri  destination; previous content is replaced
 * @param text the URI, starting with "pkcs11:" (scheme case-insensitive)
 * @param len  length of text in bytes (no NUL needed)
 * @return HSMC_OK; HSMC_ERR_ARG for NULL arguments; HSMC_ERR_URI with
 *         uri->err_msg and uri->err_off set. On failure all fields are
 *         absent again (no half-parsed result).
 */
hsmc_err_t hsmc_uri_parse(hsmc_uri_t *uri, const char *text, size_t len);

/** Wipe the struct (it may hold a pin-value). Accepts NULL. */
void hsmc_uri_free(hsmc_uri_t *uri);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_URI_H */
