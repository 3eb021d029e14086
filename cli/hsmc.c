/*
 * hsmc.c: entry point of the hsmc command. The groups of commands are
 * listed here; everything else is in cli_common.c and cmd_<group>.c.
 */
#include "cli.h"

/* Add a group: write cmd_<group>.c with a cli_group_t and list it here.
 * The order is the order of `hsmc --help`. */
static const cli_group_t *const groups[] = {
    &cli_group_token,
    &cli_group_object,
    &cli_group_key,
    &cli_group_sign,
    &cli_group_cose,
    &cli_group_csr,
    &cli_group_ca,
    &cli_group_cert,
    &cli_group_crl,
    &cli_group_provision,
    &cli_group_audit,
};

int main(int argc, char **argv)
{
    return cli_main(argc, argv, groups, sizeof(groups) / sizeof(groups[0]));
}
