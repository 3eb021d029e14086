/**
 * @file object.h
 * @brief Finding and listing token objects.
 *
 * A lookup that matches more than one object is an error naming the count,
 * never "the first one". Object handles are valid for the context
 * generation they were found in; after a recovery, hsmc_obj_refresh()
 * finds the object again by label/id/class.
 */
#ifndef HSMC_OBJECT_H
#define HSMC_OBJECT_H

#include "hsmc/token.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What to look for. Zero-initialised matches every object. */
typedef struct hsmc_obj_query {
    const char *label;    /**< CKA_LABEL, NULL = any */
    const uint8_t *id;    /**< CKA_ID bytes, NULL = any */
    size_t id_len;
    int has_class;        /**< 1: also match cls */
    CK_OBJECT_CLASS cls;  /**< CKO_* */
} hsmc_obj_query_t;

/* hsmc_obj_t.usage bits, from the boolean attributes. */
#define HSMC_USE_SIGN 0x001u
#define HSMC_USE_VERIFY 0x002u
#define HSMC_USE_ENCRYPT 0x004u
#define HSMC_USE_DECRYPT 0x008u
#define HSMC_USE_WRAP 0x010u
#define HSMC_USE_UNWRAP 0x020u
#define HSMC_USE_DERIVE 0x040u
#define HSMC_ATTR_SENSITIVE 0x100u
#define HSMC_ATTR_EXTRACTABLE 0x200u
#define HSMC_ATTR_TOKEN 0x400u
#define HSMC_ATTR_PRIVATE 0x800u

/** A found object with its common attributes. */
typedef struct hsmc_obj {
    CK_OBJECT_HANDLE handle;
    unsigned long generation;    /**< context generation of handle */
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE key_type;        /**< CK_UNAVAILABLE_INFORMATION for non-keys */
    unsigned usage;              /**< HSMC_USE_* | HSMC_ATTR_* */
    char label[HSMC_MAX_LABEL_LEN + 1];
    size_t label_len;
    uint8_t id[HSMC_MAX_ID_LEN];
    size_t id_len;
} hsmc_obj_t;

/**
 * Build a query from a parsed URI's object, id and type attributes.
 * The query points into uri.
 */
hsmc_err_t hsmc_obj_query_from_uri(hsmc_obj_query_t *q, const hsmc_uri_t *uri);

/**
 * Find exactly one object.
 * @return HSMC_OK; HSMC_ERR_ARG; HSMC_ERR_STATE; HSMC_ERR_OBJECT_NOT_FOUND;
 *   HSMC_ERR_OBJECT_AMBIGUOUS (detail gives the count); HSMC_ERR_LIMIT
 *   (label or id longer than the configured maxima); session errors.
 */
hsmc_err_t hsmc_find(hsmc_t *h, const hsmc_obj_query_t *q, hsmc_obj_t *out);

/** Listing callback; return non-zero to stop early. */
typedef int (*hsmc_obj_cb_t)(void *user, const hsmc_obj_t *obj);

/**
 * Call cb for each matching object, reading HSMC_MAX_OBJECTS handles at a
 * time (no limit on the total). `count` (optional) receives the number of
 * objects passed to cb.
 */
hsmc_err_t hsmc_list(hsmc_t *h, const hsmc_obj_query_t *q, hsmc_obj_cb_t cb, void *user,
                     size_t *count);

/**
 * Make obj->handle valid again after a recovery (same label, id and class;
 * again exactly one). A no-op when the generation did not change.
 */
hsmc_err_t hsmc_obj_refresh(hsmc_t *h, hsmc_obj_t *obj);

/** "private-key", "public-key", "secret-key", "certificate", "data", ... */
const char *hsmc_class_name(CK_OBJECT_CLASS cls);
/** "EC", "RSA", "AES", "EC_EDWARDS", ... or "?" */
const char *hsmc_key_type_name(CK_KEY_TYPE kt);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_OBJECT_H */
