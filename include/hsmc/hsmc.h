/**
 * @file hsmc.h
 * @brief hsmc: use keys that never leave a PKCS#11 token. Includes every
 *        public header.
 */
#ifndef HSMC_H
#define HSMC_H

#define HSMC_VERSION_MAJOR 0
#define HSMC_VERSION_MINOR 1
#define HSMC_VERSION_PATCH 0
#define HSMC_VERSION_STRING "0.1.0"

#include "hsmc/types.h"
#include "hsmc/error.h"
#include "hsmc/uri.h"
#include "hsmc/token.h"
#include "hsmc/object.h"
#include "hsmc/probe.h"
#include "hsmc/cbor.h"
#include "hsmc/key.h"
#include "hsmc/crypto.h"
#include "hsmc/cose.h"
#include "hsmc/audit.h"

#endif /* HSMC_H */
