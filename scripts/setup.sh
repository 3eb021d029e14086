#!/usr/bin/env bash
# Installs the Debian packages hsmc's build, tests and demo need (bookworm).
# Runs apt-get only when something is missing; needs root (or sudo) then.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config          # build
  libp11-kit-dev                            # PKCS#11 header (p11-kit/pkcs11.h)
  libmbedtls-dev                            # X.509/CSR/TLS and software crypto
  softhsm2                                  # the token every test runs against
  opensc openssl gnutls-bin                 # independent checkers: pkcs11-tool, openssl, certtool
  python3 python3-cbor2 python3-cryptography python3-kconfiglib
  gcc-arm-none-eabi libnewlib-arm-none-eabi # Cortex-M4 build check
  binutils valgrind time                    # nm/size, callgrind benchmarks, peak RSS
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ] && [ "${HSMC_FORCE_APT:-0}" != 1 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "setup: installing ${missing[*]:-${PACKAGES[*]}}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
