/*
 * hsmc port for Zephyr: k_mutex locking, kernel uptime, and a token linked
 * into the image (its C_GetFunctionList is called directly; there is no
 * loader). PINs come from a callback or memory only.
 */
#include <stddef.h>
#include <stdint.h>

#include <zephyr/kernel.h>

#include "hsmc_port.h"

/* A k_mutex lives inside hsmc_mutex_storage_t: it must fit, and must be
 * aligned no stricter than the storage union (C99 has no static_assert). */
typedef char hsmc_zephyr_mutex_fits[(sizeof(struct k_mutex) <= HSMC_PORT_MUTEX_BYTES) ? 1 : -1];
struct hsmc_zephyr_align_probe {
    char c;
    struct k_mutex m;
};
struct hsmc_zephyr_storage_probe {
    char c;
    hsmc_mutex_storage_t s;
};
typedef char hsmc_zephyr_mutex_aligned[(offsetof(struct hsmc_zephyr_align_probe, m) <=
                                        offsetof(struct hsmc_zephyr_storage_probe, s))
                                           ? 1
                                           : -1];

/* ---- Module binding ----------------------------------------------------- */

/* Copy a constant message into detail[cap] (truncating). */
static void zephyr_detail(char *detail, size_t cap, const char *msg)
{
    size_t i = 0;
    if (detail == NULL || cap == 0) {
        return;
    }
    while (msg[i] != '\0' && i + 1 < cap) {
        detail[i] = msg[i];
        i++;
    }
    detail[i] = '\0';
}

/* Contract: see hsmc_port.h. `path` is ignored: the token is linked in. */
hsmc_err_t hsmc_port_module_load(hsmc_port_module_t *m, const char *path,
                                 CK_FUNCTION_LIST_PTR *fl, char *detail, size_t cap)
{
    CK_FUNCTION_LIST_PTR list = NULL;

    (void)path;
    if (m == NULL || fl == NULL) {
        zephyr_detail(detail, cap, "module load: no output given");
        return HSMC_ERR_ARG;
    }
    m->handle = NULL;
    *fl = NULL;
    if (C_GetFunctionList(&list) != CKR_OK) {
        zephyr_detail(detail, cap, "linked token: C_GetFunctionList failed");
        return HSMC_ERR_MODULE_INVALID;
    }
    if (list == NULL) {
        zephyr_detail(detail, cap, "linked token: C_GetFunctionList returned no list");
        return HSMC_ERR_MODULE_INVALID;
    }
    *fl = list;
    return HSMC_OK;
}

/* Nothing was loaded, so nothing is released. */
void hsmc_port_module_unload(hsmc_port_module_t *m)
{
    if (m != NULL) {
        m->handle = NULL;
    }
}

/* ---- Mutexes ------------------------------------------------------------ */

static struct k_mutex *zephyr_mutex(hsmc_mutex_storage_t *mx)
{
    return (struct k_mutex *)(void *)mx->u.b;
}

/* k_mutex is recursive and has priority inheritance; not for ISRs. */
hsmc_err_t hsmc_port_mutex_init(hsmc_mutex_storage_t *mx)
{
    if (mx == NULL) {
        return HSMC_ERR_ARG;
    }
    return k_mutex_init(zephyr_mutex(mx)) == 0 ? HSMC_OK : HSMC_ERR_PORT;
}

void hsmc_port_mutex_lock(hsmc_mutex_storage_t *mx)
{
    if (mx != NULL) {
        (void)k_mutex_lock(zephyr_mutex(mx), K_FOREVER);
    }
}

void hsmc_port_mutex_unlock(hsmc_mutex_storage_t *mx)
{
    if (mx != NULL) {
        (void)k_mutex_unlock(zephyr_mutex(mx));
    }
}

/* A k_mutex holds no resources: nothing to release. */
void hsmc_port_mutex_destroy(hsmc_mutex_storage_t *mx)
{
    (void)mx;
}

/* Statically initialised, so usable before any hsmc call. */
static K_MUTEX_DEFINE(hsmc_zephyr_global);

void hsmc_port_global_lock(void)
{
    (void)k_mutex_lock(&hsmc_zephyr_global, K_FOREVER);
}

void hsmc_port_global_unlock(void)
{
    (void)k_mutex_unlock(&hsmc_zephyr_global);
}

/* ---- Time and process ---------------------------------------------------- */

/*
 * Wall-clock time is not reported: whether a Zephyr image has a set
 * real-time clock (SNTP, RTC driver, POSIX clock API) depends on its
 * configuration, and a guess would give certificates wrong validity. The
 * caller passes explicit validity times instead.
 */
int64_t hsmc_port_time(void)
{
    return -1;
}

uint32_t hsmc_port_ms(void)
{
    return k_uptime_get_32();
}

void hsmc_port_sleep_ms(uint32_t ms)
{
    if (ms == 0) {
        k_yield();
        return;
    }
    /* k_msleep takes int32_t; hsmc never sleeps anywhere near that long. */
    (void)k_msleep(ms > (uint32_t)INT32_MAX ? INT32_MAX : (int32_t)ms);
}

/* One image, no fork. */
unsigned long hsmc_port_pid(void)
{
    return 1ul;
}

/* ---- PIN input ----------------------------------------------------------- */

/* Contract: see hsmc_port.h. Always HSMC_ERR_PORT (buffer wiped). */
hsmc_err_t hsmc_port_pin_read(hsmc_pin_kind_t kind, const char *arg, int fd,
                              char *buf, size_t cap, size_t *len,
                              char *detail, size_t dcap)
{
    (void)kind;
    (void)arg;
    (void)fd;
    if (buf != NULL) {
        volatile char *v = buf;
        while (cap-- > 0) {
            *v++ = 0;
        }
    }
    if (len != NULL) {
        *len = 0;
    }
    zephyr_detail(detail, dcap, "the Zephyr port reads no files; pass a PIN callback");
    return HSMC_ERR_PORT;
}
