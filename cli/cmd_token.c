/*
 * cmd_token.c: `hsmc token ...`: what the module and its tokens are and
 * what they can do (list, info, mechanisms, test).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* ---- flag words ------------------------------------------------------------- */

static const cli_flag_word_t slot_flags[] = {
    {CKF_TOKEN_PRESENT, "token present"},
    {CKF_REMOVABLE_DEVICE, "removable device"},
    {CKF_HW_SLOT, "hardware slot"},
    {0, NULL}};

/* All token flags, for `token info`. */
static const cli_flag_word_t token_flags_all[] = {
    {CKF_RNG, "rng"},
    {CKF_WRITE_PROTECTED, "write protected"},
    {CKF_LOGIN_REQUIRED, "login required"},
    {CKF_USER_PIN_INITIALIZED, "user PIN initialized"},
    {CKF_RESTORE_KEY_NOT_NEEDED, "restore key not needed"},
    {CKF_CLOCK_ON_TOKEN, "clock on token"},
    {CKF_PROTECTED_AUTHENTICATION_PATH, "protected authentication path"},
    {CKF_DUAL_CRYPTO_OPERATIONS, "dual crypto operations"},
    {CKF_TOKEN_INITIALIZED, "token initialized"},
    {CKF_SECONDARY_AUTHENTICATION, "secondary authentication"},
    {CKF_USER_PIN_COUNT_LOW, "user PIN count low"},
    {CKF_USER_PIN_FINAL_TRY, "user PIN final try"},
    {CKF_USER_PIN_LOCKED, "user PIN locked"},
    {CKF_USER_PIN_TO_BE_CHANGED, "user PIN to be changed"},
    {CKF_SO_PIN_COUNT_LOW, "SO PIN count low"},
    {CKF_SO_PIN_FINAL_TRY, "SO PIN final try"},
    {CKF_SO_PIN_LOCKED, "SO PIN locked"},
    {CKF_SO_PIN_TO_BE_CHANGED, "SO PIN to be changed"},
    {1UL << 24, "error state"}, /* CKF_ERROR_STATE (PKCS#11 3.0) */
    {0, NULL}};

/* The flags that matter when choosing a token, for `token list`. */
static const cli_flag_word_t token_flags_short[] = {
    {CKF_TOKEN_INITIALIZED, "token initialized"},
    {CKF_LOGIN_REQUIRED, "login required"},
    {CKF_USER_PIN_INITIALIZED, "user PIN initialized"},
    {CKF_PROTECTED_AUTHENTICATION_PATH, "protected authentication path"},
    {CKF_WRITE_PROTECTED, "write protected"},
    {CKF_USER_PIN_COUNT_LOW, "user PIN count low"},
    {CKF_USER_PIN_FINAL_TRY, "user PIN final try"},
    {CKF_USER_PIN_LOCKED, "user PIN locked"},
    {CKF_USER_PIN_TO_BE_CHANGED, "user PIN to be changed"},
    {CKF_SO_PIN_LOCKED, "SO PIN locked"},
    {0, NULL}};

static const cli_flag_word_t mech_flags[] = {
    {CKF_ENCRYPT, "encrypt"},
    {CKF_DECRYPT, "decrypt"},
    {CKF_DIGEST, "digest"},
    {CKF_SIGN, "sign"},
    {CKF_SIGN_RECOVER, "sign-recover"},
    {CKF_VERIFY, "verify"},
    {CKF_VERIFY_RECOVER, "verify-recover"},
    {CKF_GENERATE, "generate"},
    {CKF_GENERATE_KEY_PAIR, "generate-key-pair"},
    {CKF_WRAP, "wrap"},
    {CKF_UNWRAP, "unwrap"},
    {CKF_DERIVE, "derive"},
    {CKF_HW, "hw"},
    {CKF_EC_F_P, "ec-f-p"},
    {1UL << 21, "ec-f-2m"},   /* CKF_EC_F_2M */
    {1UL << 22, "ec-ecparameters"}, /* CKF_EC_ECPARAMETERS */
    {CKF_EC_NAMEDCURVE, "ec-named-curve"},
    {CKF_EC_UNCOMPRESS, "ec-uncompressed"},
    {CKF_EC_COMPRESS, "ec-compressed"},
    {CKF_EXTENSION, "extension"},
    {0, NULL}};

/* The flag words mean the same in every output; only the width differs. */
static const cli_opt_t json_only[] = {
    {"json", 0, NULL, "print one JSON document on stdout instead of text"},
    {NULL, 0, NULL, NULL}};

static const cli_opt_t test_opts[] = {
    {"list-only", 0, NULL, "read the mechanism lists only: no calls, no keys, no PIN"},
    {"json", 0, NULL, "print one JSON document on stdout instead of text"},
    {NULL, 0, NULL, NULL}};

/* ---- shared ------------------------------------------------------------------- */

/* Text fields of the PKCS#11 structs, trimmed (+1 for the NUL). */
typedef struct tok_text {
    char label[33], manufacturer[33], model[17], serial[17], utc[17];
} tok_text_t;

static void tok_text(tok_text_t *t, const CK_TOKEN_INFO *ti)
{
    cli_pad_str(t->label, sizeof(t->label), ti->label, sizeof(ti->label));
    cli_pad_str(t->manufacturer, sizeof(t->manufacturer), ti->manufacturerID,
                sizeof(ti->manufacturerID));
    cli_pad_str(t->model, sizeof(t->model), ti->model, sizeof(ti->model));
    cli_pad_str(t->serial, sizeof(t->serial), ti->serialNumber, sizeof(ti->serialNumber));
    cli_pad_str(t->utc, sizeof(t->utc), ti->utcTime, sizeof(ti->utcTime));
}

static void put_field(const char *name, const char *value)
{
    printf("  %-22s ", name);
    cli_put_safe(stdout, value, strlen(value));
    putchar('\n');
}

static void put_version(char *dst, size_t cap, CK_VERSION v)
{
    snprintf(dst, cap, "%u.%u", (unsigned)v.major, (unsigned)v.minor);
}

/* A PKCS#11 count for text output. */
static void put_count(const char *name, unsigned long v, int infinite_ok)
{
    if (v == CK_UNAVAILABLE_INFORMATION)
        printf("  %-22s unavailable\n", name);
    else if (infinite_ok && v == CK_EFFECTIVELY_INFINITE)
        printf("  %-22s unlimited\n", name);
    else
        printf("  %-22s %lu\n", name, v);
}

/* The bits a flag-word table names. */
static unsigned long flag_mask(const cli_flag_word_t *t)
{
    unsigned long m = 0;
    for (; t->word != NULL; t++)
        m |= t->bit;
    return m;
}

static void put_flags_field(const char *name, unsigned long flags, const cli_flag_word_t *t)
{
    printf("  %-22s ", name);
    cli_put_flags(stdout, flags, t);
    putchar('\n');
}

/* The selected token's slot and CK_TOKEN_INFO; prints the error. */
static int selected_token(cli_ctx_t *c, CK_SLOT_ID *slot, CK_TOKEN_INFO *ti)
{
    hsmc_err_t r = hsmc_slot(&c->h, slot);
    if (r == HSMC_OK)
        r = hsmc_token_info(&c->h, *slot, ti);
    return r == HSMC_OK ? CLI_EXIT_OK : cli_fail(c, r, "cannot read the token information");
}

/* ---- token list ------------------------------------------------------------------ */

static int token_list(cli_ctx_t *c)
{
    CK_SLOT_ID slots[HSMC_MAX_SLOTS];
    CK_INFO mi;
    size_t n = 0, i, ntok = 0;
    char desc[33], manuf[33], ver[16], cver[16];
    int json = cli_flag(c, "json");
    cli_json_t j;
    hsmc_err_t r;
    int rc = cli_open(c, CLI_OPEN_MODULE_ONLY);
    if (rc != CLI_EXIT_OK)
        return rc;
    r = hsmc_module_info(&c->h, &mi);
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot read the module information (C_GetInfo)");
    r = hsmc_slot_list(&c->h, 0, slots, HSMC_MAX_SLOTS, &n);
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot list the slots (C_GetSlotList)");

    cli_pad_str(desc, sizeof(desc), mi.libraryDescription, sizeof(mi.libraryDescription));
    cli_pad_str(manuf, sizeof(manuf), mi.manufacturerID, sizeof(mi.manufacturerID));
    put_version(ver, sizeof(ver), mi.libraryVersion);
    put_version(cver, sizeof(cver), mi.cryptokiVersion);
    if (json) {
        cli_json_init(&j, stdout);
        cli_json_obj(&j, NULL);
        cli_json_obj(&j, "module");
        cli_json_str(&j, "path", c->cfg.module_path);
        cli_json_str(&j, "description", desc);
        cli_json_str(&j, "manufacturer", manuf);
        cli_json_str(&j, "version", ver);
        cli_json_str(&j, "cryptoki_version", cver);
        cli_json_end(&j);
        cli_json_arr(&j, "slots");
    } else {
        fputs("Module: ", stdout);
        cli_put_safe(stdout, desc, strlen(desc));
        fputs(" by ", stdout);
        cli_put_safe(stdout, manuf, strlen(manuf));
        printf(", version %s, Cryptoki %s\n", ver, cver);
    }

    for (i = 0; i < n; i++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        tok_text_t t;
        char sdesc[65];
        int has_token = 0;
        r = hsmc_slot_info(&c->h, slots[i], &si);
        if (r != HSMC_OK) {
            if (json)
                cli_json_end(&j), cli_json_end(&j);
            return cli_fail(c, r, "cannot read a slot's information (C_GetSlotInfo)");
        }
        cli_pad_str(sdesc, sizeof(sdesc), si.slotDescription, sizeof(si.slotDescription));
        if (si.flags & CKF_TOKEN_PRESENT) {
            r = hsmc_token_info(&c->h, slots[i], &ti);
            if (r == HSMC_OK) {
                has_token = 1;
                ntok++;
                tok_text(&t, &ti);
            } else if (r != HSMC_ERR_TOKEN_NOT_PRESENT) {
                if (json)
                    cli_json_end(&j), cli_json_end(&j);
                return cli_fail(c, r, "cannot read a token's information (C_GetTokenInfo)");
            }
        }
        if (json) {
            cli_json_obj(&j, NULL);
            cli_json_num(&j, "id", (unsigned long)slots[i]);
            cli_json_str(&j, "description", sdesc);
            cli_json_flags(&j, "flags", si.flags, slot_flags);
            if (has_token) {
                cli_json_obj(&j, "token");
                cli_json_str(&j, "label", t.label);
                cli_json_str(&j, "manufacturer", t.manufacturer);
                cli_json_str(&j, "model", t.model);
                cli_json_str(&j, "serial", t.serial);
                cli_json_bool(&j, "initialized", (ti.flags & CKF_TOKEN_INITIALIZED) != 0);
                cli_json_flags(&j, "flags", ti.flags & flag_mask(token_flags_short),
                               token_flags_short);
                cli_json_end(&j);
            } else {
                cli_json_null(&j, "token");
            }
            cli_json_end(&j);
            continue;
        }
        printf("Slot %lu: ", (unsigned long)slots[i]);
        cli_put_safe(stdout, sdesc, strlen(sdesc));
        putchar('\n');
        if (!has_token) {
            puts("  (no token)");
            continue;
        }
        if (ti.flags & CKF_TOKEN_INITIALIZED)
            put_field("label:", t.label);
        else
            put_field("label:", "(token not initialized)");
        put_field("manufacturer:", t.manufacturer);
        put_field("model:", t.model);
        put_field("serial:", t.serial);
        put_flags_field("flags:", ti.flags & flag_mask(token_flags_short), token_flags_short);
    }
    if (json) {
        cli_json_end(&j);
        cli_json_end(&j);
    } else {
        printf("%lu slot%s, %lu token%s\n", (unsigned long)n, n == 1 ? "" : "s",
               (unsigned long)ntok, ntok == 1 ? "" : "s");
    }
    return CLI_EXIT_OK;
}

/* ---- token info -------------------------------------------------------------------- */

static int token_info(cli_ctx_t *c)
{
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    CK_SLOT_INFO si;
    tok_text_t t;
    char sdesc[65], hw[16], fw[16];
    int json = cli_flag(c, "json");
    hsmc_err_t r;
    int rc = cli_open(c, CLI_OPEN_NO_LOGIN);
    if (rc == CLI_EXIT_OK)
        rc = selected_token(c, &slot, &ti);
    if (rc != CLI_EXIT_OK)
        return rc;
    r = hsmc_slot_info(&c->h, slot, &si);
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot read the slot information (C_GetSlotInfo)");
    tok_text(&t, &ti);
    cli_pad_str(sdesc, sizeof(sdesc), si.slotDescription, sizeof(si.slotDescription));
    put_version(hw, sizeof(hw), ti.hardwareVersion);
    put_version(fw, sizeof(fw), ti.firmwareVersion);

    if (json) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj(&j, NULL);
        cli_json_num(&j, "slot", (unsigned long)slot);
        cli_json_str(&j, "slot_description", sdesc);
        cli_json_str(&j, "label", t.label);
        cli_json_str(&j, "manufacturer", t.manufacturer);
        cli_json_str(&j, "model", t.model);
        cli_json_str(&j, "serial", t.serial);
        cli_json_num(&j, "flags_value", (unsigned long)ti.flags);
        cli_json_flags(&j, "flags", ti.flags, token_flags_all);
        cli_json_count(&j, "max_sessions", ti.ulMaxSessionCount, 1);
        cli_json_count(&j, "sessions", ti.ulSessionCount, 0);
        cli_json_count(&j, "max_rw_sessions", ti.ulMaxRwSessionCount, 1);
        cli_json_count(&j, "rw_sessions", ti.ulRwSessionCount, 0);
        cli_json_count(&j, "min_pin_len", ti.ulMinPinLen, 0);
        cli_json_count(&j, "max_pin_len", ti.ulMaxPinLen, 0);
        cli_json_count(&j, "total_public_memory", ti.ulTotalPublicMemory, 0);
        cli_json_count(&j, "free_public_memory", ti.ulFreePublicMemory, 0);
        cli_json_count(&j, "total_private_memory", ti.ulTotalPrivateMemory, 0);
        cli_json_count(&j, "free_private_memory", ti.ulFreePrivateMemory, 0);
        cli_json_str(&j, "hardware_version", hw);
        cli_json_str(&j, "firmware_version", fw);
        if (ti.flags & CKF_CLOCK_ON_TOKEN)
            cli_json_str(&j, "utc_time", t.utc);
        else
            cli_json_null(&j, "utc_time");
        cli_json_end(&j);
        return CLI_EXIT_OK;
    }
    printf("Token in slot %lu (", (unsigned long)slot);
    cli_put_safe(stdout, sdesc, strlen(sdesc));
    puts(")");
    put_field("label:", t.label);
    put_field("manufacturer:", t.manufacturer);
    put_field("model:", t.model);
    put_field("serial:", t.serial);
    put_flags_field("flags:", ti.flags, token_flags_all);
    put_count("max sessions:", ti.ulMaxSessionCount, 1);
    put_count("sessions:", ti.ulSessionCount, 0);
    put_count("max r/w sessions:", ti.ulMaxRwSessionCount, 1);
    put_count("r/w sessions:", ti.ulRwSessionCount, 0);
    put_count("min PIN length:", ti.ulMinPinLen, 0);
    put_count("max PIN length:", ti.ulMaxPinLen, 0);
    put_count("total public memory:", ti.ulTotalPublicMemory, 0);
    put_count("free public memory:", ti.ulFreePublicMemory, 0);
    put_count("total private memory:", ti.ulTotalPrivateMemory, 0);
    put_count("free private memory:", ti.ulFreePrivateMemory, 0);
    put_field("hardware version:", hw);
    put_field("firmware version:", fw);
    put_field("UTC time:", (ti.flags & CKF_CLOCK_ON_TOKEN) ? t.utc : "(no clock)");
    return CLI_EXIT_OK;
}

/* ---- token mechanisms ----------------------------------------------------------------- */

/* "CKM_..." or, for a type hsmc has no name for, its hex value. */
static const char *mech_name(CK_MECHANISM_TYPE m, char *buf, size_t cap)
{
    const char *name = hsmc_ckm_name(m);
    if (strcmp(name, "CKM_UNKNOWN") != 0 && strcmp(name, "CKM_VENDOR_DEFINED") != 0)
        return name;
    snprintf(buf, cap, "0x%08lx", (unsigned long)m);
    return buf;
}

static int token_mechanisms(cli_ctx_t *c)
{
    CK_MECHANISM_TYPE mechs[HSMC_MAX_MECHANISMS];
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    tok_text_t t;
    size_t n = 0, i;
    int json = cli_flag(c, "json");
    cli_json_t j;
    hsmc_err_t r;
    int rc = cli_open(c, CLI_OPEN_NO_LOGIN);
    if (rc == CLI_EXIT_OK)
        rc = selected_token(c, &slot, &ti);
    if (rc != CLI_EXIT_OK)
        return rc;
    tok_text(&t, &ti);
    r = hsmc_mechanism_list(&c->h, slot, mechs, HSMC_MAX_MECHANISMS, &n);
    if (r != HSMC_OK)
        return cli_fail(c, r, "cannot list the mechanisms (C_GetMechanismList)");

    if (json) {
        cli_json_init(&j, stdout);
        cli_json_obj(&j, NULL);
        cli_json_num(&j, "slot", (unsigned long)slot);
        cli_json_str(&j, "token", t.label);
        cli_json_arr(&j, "mechanisms");
    } else {
        fputs("Mechanisms of token '", stdout);
        cli_put_safe(stdout, t.label, strlen(t.label));
        printf("' (slot %lu):\n", (unsigned long)slot);
    }
    for (i = 0; i < n; i++) {
        CK_MECHANISM_INFO mi;
        char hex[24];
        const char *name = mech_name(mechs[i], hex, sizeof(hex));
        /* SoftHSM2 ORs into mi.flags instead of setting them: start from zero. */
        memset(&mi, 0, sizeof(mi));
        r = hsmc_mechanism_info(&c->h, slot, mechs[i], &mi);
        if (r != HSMC_OK) {
            /* A listed mechanism without info is reported, not fatal. */
            memset(&mi, 0, sizeof(mi));
            if (!json)
                printf("  %-32s (no information: %s)\n", name, hsmc_strerror(r));
            else {
                cli_json_obj(&j, NULL);
                cli_json_str(&j, "name", name);
                cli_json_num(&j, "type", (unsigned long)mechs[i]);
                cli_json_str(&j, "error", hsmc_err_name(r));
                cli_json_end(&j);
            }
            continue;
        }
        if (json) {
            cli_json_obj(&j, NULL);
            cli_json_str(&j, "name", name);
            cli_json_num(&j, "type", (unsigned long)mechs[i]);
            cli_json_num(&j, "min_key_size", (unsigned long)mi.ulMinKeySize);
            cli_json_num(&j, "max_key_size", (unsigned long)mi.ulMaxKeySize);
            cli_json_flags(&j, "flags", mi.flags, mech_flags);
            cli_json_end(&j);
            continue;
        }
        {
            char range[48] = "";
            if (mi.ulMinKeySize != 0 || mi.ulMaxKeySize != 0)
                snprintf(range, sizeof(range), "keysize %lu..%lu",
                         (unsigned long)mi.ulMinKeySize, (unsigned long)mi.ulMaxKeySize);
            printf("  %-32s %-24s ", name, range);
        }
        cli_put_flags(stdout, mi.flags, mech_flags);
        putchar('\n');
    }
    if (json) {
        cli_json_end(&j);
        cli_json_num(&j, "count", (unsigned long)n);
        cli_json_end(&j);
    } else {
        printf("%lu mechanism%s\n", (unsigned long)n, n == 1 ? "" : "s");
    }
    return CLI_EXIT_OK;
}

/* ---- token test ------------------------------------------------------------------------- */

static int token_test(cli_ctx_t *c)
{
    hsmc_caps_t caps;
    CK_SLOT_ID slot;
    CK_TOKEN_INFO ti;
    tok_text_t t;
    int list_only = cli_flag(c, "list-only");
    int json = cli_flag(c, "json");
    unsigned works = 0, listed = 0, op;
    static const char *const layouts[] = {"none", "CK_GCM_PARAMS with ulIvBits",
                                          "CK_GCM_PARAMS without ulIvBits"};
    hsmc_err_t r;
    int rc = cli_open(c, list_only ? CLI_OPEN_NO_LOGIN : 0);
    if (rc == CLI_EXIT_OK)
        rc = selected_token(c, &slot, &ti);
    if (rc != CLI_EXIT_OK)
        return rc;
    tok_text(&t, &ti);
    memset(&caps, 0, sizeof(caps));
    r = hsmc_probe(&c->h, list_only ? HSMC_PROBE_LIST_ONLY : 0u, &caps);
    if (r != HSMC_OK)
        return cli_fail(c, r, "the probe failed");

    for (op = 0; op < HSMC_OP_COUNT; op++) {
        if (caps.op[op].status == HSMC_CAP_WORKS)
            works++;
        else if (caps.op[op].status == HSMC_CAP_LISTED)
            listed++;
    }
    if (json) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_obj(&j, NULL);
        cli_json_str(&j, "token", t.label);
        cli_json_str(&j, "model", t.model);
        cli_json_str(&j, "serial", t.serial);
        cli_json_num(&j, "slot", (unsigned long)slot);
        cli_json_bool(&j, "list_only", list_only);
        cli_json_arr(&j, "operations");
        for (op = 0; op < HSMC_OP_COUNT; op++) {
            const hsmc_cap_t *cap = &caps.op[op];
            char hex[24];
            cli_json_obj(&j, NULL);
            cli_json_str(&j, "op", hsmc_op_name((hsmc_op_t)op));
            cli_json_str(&j, "status", hsmc_cap_status_name(cap->status));
            if (op == HSMC_OP_RANDOM)
                cli_json_null(&j, "mechanism");
            else
                cli_json_str(&j, "mechanism", mech_name(cap->mech, hex, sizeof(hex)));
            if (cap->rv != CKR_OK)
                cli_json_str(&j, "rv", hsmc_ckr_name(cap->rv));
            else
                cli_json_null(&j, "rv");
            cli_json_end(&j);
        }
        cli_json_end(&j);
        cli_json_str(&j, "gcm_layout", caps.gcm_layout < 3 ? layouts[caps.gcm_layout] : "?");
        cli_json_num(&j, "works", works);
        cli_json_num(&j, "listed", listed);
        cli_json_num(&j, "total", HSMC_OP_COUNT);
        cli_json_end(&j);
        return CLI_EXIT_OK;
    }

    fputs("Token '", stdout);
    cli_put_safe(stdout, t.label, strlen(t.label));
    fputs("' (", stdout);
    cli_put_safe(stdout, t.model, strlen(t.model));
    fputs(", serial ", stdout);
    cli_put_safe(stdout, t.serial, strlen(t.serial));
    printf(")%s\n", list_only ? ": from the mechanism lists only" : "");
    for (op = 0; op < HSMC_OP_COUNT; op++) {
        const hsmc_cap_t *cap = &caps.op[op];
        char hex[24];
        const char *mech = op == HSMC_OP_RANDOM ? "C_GenerateRandom"
                                                 : mech_name(cap->mech, hex, sizeof(hex));
        printf("  %-18s %-8s ", hsmc_op_name((hsmc_op_t)op), hsmc_cap_status_name(cap->status));
        if ((cap->status == HSMC_CAP_BROKEN || cap->status == HSMC_CAP_MISSING) &&
            cap->rv != CKR_OK)
            printf("%-28s %s\n", mech, hsmc_ckr_name(cap->rv));
        else
            printf("%s\n", mech);
    }
    if (caps.op[HSMC_OP_AES_GCM].status == HSMC_CAP_WORKS && caps.gcm_layout < 3)
        printf("AES-GCM parameters: %s\n", layouts[caps.gcm_layout]);
    if (list_only)
        printf("%u of %u operations listed (not tried: --list-only)\n", listed + works,
               (unsigned)HSMC_OP_COUNT);
    else if (listed > 0)
        printf("%u of %u operations work (%u more listed but not tried)\n", works,
               (unsigned)HSMC_OP_COUNT, listed);
    else
        printf("%u of %u operations work\n", works, (unsigned)HSMC_OP_COUNT);
    return CLI_EXIT_OK;
}

/* ---- the group ----------------------------------------------------------------------------- */

static const cli_cmd_t token_cmds[] = {
    {"list", "list the module's slots and tokens", "[OPTIONS]",
     "Shows the module (C_GetInfo) and every slot (C_GetSlotList), with the token in\n"
     "it: label, manufacturer, model, serial number and the flags that matter when\n"
     "choosing a token. Loads the module only: no token is selected and no PIN is\n"
     "needed. Slot ids can change between runs (SoftHSM2 reassigns them); select\n"
     "tokens by label or serial.",
     "  hsmc token list\n"
     "  hsmc token list --module /usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so\n"
     "  hsmc token list --json\n",
     json_only, CLI_PIN_NONE, 0, token_list},
    {"info", "show everything the selected token reports", "[OPTIONS]",
     "Prints the selected token's CK_TOKEN_INFO: label, manufacturer, model, serial,\n"
     "all flags in words, session counts, PIN length limits, memory, versions and\n"
     "clock. Counts the token does not report print as \"unavailable\", unlimited\n"
     "session counts as \"unlimited\". No PIN is needed.",
     "  hsmc token info --token test\n"
     "  hsmc token info --token 'pkcs11:token=test;serial=85ec2077b13f5288' --json\n",
     json_only, CLI_PIN_NONE, 0, token_info},
    {"mechanisms", "list the selected token's mechanisms", "[OPTIONS]",
     "Prints each mechanism the token lists (C_GetMechanismList) with its key size\n"
     "range and flags. Listed is not the same as working: `hsmc token test` tries\n"
     "the operations hsmc uses. No PIN is needed.",
     "  hsmc token mechanisms --token test\n"
     "  hsmc token mechanisms --token test --json\n",
     json_only, CLI_PIN_NONE, 0, token_mechanisms},
    {"test", "try every operation hsmc offers on the selected token", "[OPTIONS]",
     "Logs in and tries each operation hsmc offers with temporary session keys\n"
     "(destroyed afterwards), printing per operation whether it works, the\n"
     "mechanism hsmc uses and, for broken ones, what the token answered. Exits 0\n"
     "when the probe ran, even if some operations are missing. With --list-only\n"
     "nothing is tried and no PIN is needed.",
     "  hsmc token test --token test --pin-file /run/secrets/pin\n"
     "  HSMC_PIN_FILE=/run/secrets/pin hsmc token test --token test --json\n"
     "  hsmc token test --token test --list-only\n",
     test_opts, CLI_PIN_REQUIRED, 0, token_test},
    {NULL, NULL, NULL, NULL, NULL, NULL, CLI_PIN_NONE, 0, NULL}};

const cli_group_t cli_group_token = {"token", "Inspect the PKCS#11 module and its tokens.",
                                     token_cmds, 0};
