/*
 * The static port: SoftHSM2 linked into the test binary at link time
 * (no dlopen). C_GetFunctionList is resolved by the linker; the module path
 * is not needed. PINs come from a callback, as on firmware.
 */
#include "hsmc_test.h"

static hsmc_err_t pin_cb(void *user, char *buf, size_t cap, size_t *len)
{
    const char *pin = hsmc_test_env("HSMC_TEST_PIN");
    (void)user;
    if (strlen(pin) > cap)
        return HSMC_ERR_PIN_SOURCE;
    memcpy(buf, pin, strlen(pin));
    *len = strlen(pin);
    return HSMC_OK;
}

static void test_linked_token(void)
{
    hsmc_cfg_t cfg;
    hsmc_t h;
    CK_INFO info;
    uint8_t rnd[32];
    hsmc_obj_query_t q;
    hsmc_obj_t obj;

    hsmc_cfg_init(&cfg);
    cfg.module_path = NULL; /* nothing to load */
    cfg.token.label = "test";
    cfg.pin.kind = HSMC_PIN_CALLBACK;
    cfg.pin.cb = pin_cb;
    hsmc_init(&h);
    REQUIRE(hsmc_open(&h, &cfg) == HSMC_OK);
    CHECK(hsmc_functions(&h) != NULL);
    CHECK_ERR(hsmc_module_info(&h, &info), HSMC_OK);
    CHECK(memcmp(info.manufacturerID, "SoftHSM", 7) == 0);
    CHECK_ERR(hsmc_random(&h, rnd, sizeof rnd), HSMC_OK);
    memset(&q, 0, sizeof q);
    q.label = "nothing-here";
    CHECK_ERR(hsmc_find(&h, &q, &obj), HSMC_ERR_OBJECT_NOT_FOUND);
    hsmc_close(&h);
    /* File PIN sources need a filesystem the static port does not assume. */
    cfg.pin.kind = HSMC_PIN_FILE;
    cfg.pin.arg = hsmc_test_env("HSMC_TEST_PIN_FILE");
    CHECK_ERR(hsmc_open(&h, &cfg), HSMC_ERR_PORT);
}

int main(void)
{
    RUN(test_linked_token);
    return TEST_END();
}
