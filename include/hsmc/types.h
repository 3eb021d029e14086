/**
 * @file types.h
 * @brief Basic hsmc types: memory views and log levels.
 */
#ifndef HSMC_TYPES_H
#define HSMC_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "hsmc_config.h"
#include "hsmc/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Read-only memory view: input. The caller keeps the bytes alive. */
typedef struct hsmc_view {
    const uint8_t *ptr;
    size_t len;
} hsmc_view_t;

/** Writable caller buffer: output. */
typedef struct hsmc_buf {
    uint8_t *ptr;
    size_t len;
} hsmc_buf_t;

/** Log levels; a message is passed on when its level <= the configured one. */
typedef enum hsmc_log_level {
    HSMC_LOG_ERROR = 0, /**< an operation failed */
    HSMC_LOG_WARN = 1,  /**< something was recovered or refused */
    HSMC_LOG_INFO = 2,  /**< module loaded, token selected, logged in */
    HSMC_LOG_DEBUG = 3  /**< each PKCS#11 call that failed, retries */
} hsmc_log_level_t;

/**
 * Log callback. `msg` is one line without newline, valid only during the
 * call. hsmc never passes PINs or key material to it.
 */
typedef void (*hsmc_log_fn)(void *user, hsmc_log_level_t level, const char *msg);

#ifdef __cplusplus
}
#endif

#endif /* HSMC_TYPES_H */
