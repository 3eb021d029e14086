/*
 * Consumer of an installed hsmc: includes the public umbrella header and
 * calls functions that need no token, so linking and the installed
 * headers (including hsmc_config.h and p11-kit's pkcs11.h) are proven.
 */
#include <stdio.h>
#include <string.h>

#include <hsmc/hsmc.h>

static hsmc_uri_t uri; /* large (in-place buffer): keep it off the stack */

int main(void)
{
    static const char text[] =
        "pkcs11:token=gw;object=device-key;type=private"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so";
    static const char bad[] = "pkcs11:bogus-attribute=1";
    const char *msg = hsmc_strerror(HSMC_ERR_PIN_LOCKED);
    hsmc_err_t err;

    if (msg == NULL || msg[0] == '\0') {
        fprintf(stderr, "hsmc_strerror returned no text\n");
        return 1;
    }
    err = hsmc_uri_parse(&uri, text, sizeof text - 1);
    if (err != HSMC_OK || uri.token == NULL || strcmp(uri.token, "gw") != 0 ||
        uri.object == NULL || strcmp(uri.object, "device-key") != 0 ||
        uri.type != CKO_PRIVATE_KEY || uri.module_path == NULL) {
        fprintf(stderr, "hsmc_uri_parse: %s\n", hsmc_strerror(err));
        return 1;
    }
    err = hsmc_uri_parse(&uri, bad, sizeof bad - 1);
    if (err != HSMC_ERR_URI) {
        fprintf(stderr, "an unknown URI attribute was accepted\n");
        return 1;
    }
    hsmc_uri_free(&uri);
    printf("hsmc %s consumer OK: \"%s\"; bad URI -> %s\n", HSMC_VERSION_STRING, msg,
           hsmc_err_name(err));
    return 0;
}
