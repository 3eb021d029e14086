# CMake toolchain file: bare-metal Cortex-M4 with arm-none-eabi-gcc and
# newlib (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi).
#
# Builds libhsmc.a with the static port (token linked into the firmware):
#   cmake -B build-m4 -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake \
#         -DHSMC_PORT=static -DHSMC_STATIC_TOKEN_LIB=/path/to/libtoken.a \
#         -DHSMC_BUILD_TESTS=OFF -DHSMC_BUILD_CLI=OFF
#   cmake --build build-m4
# The token library is only recorded as a link dependency; nothing is
# linked into a static archive, so any path will do for a size check.
# p11-kit's pkcs11.h is a plain header and is taken from the host
# (/usr/include/p11-kit-1), or from -DHSMC_PKCS11_INCLUDE_DIR=<dir>.
# Another core: -DHSMC_CPU_FLAGS="-mcpu=cortex-m33 -mthumb -mfloat-abi=soft".

set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)

set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar CACHE FILEPATH "Archiver")
set(CMAKE_RANLIB arm-none-eabi-ranlib CACHE FILEPATH "Ranlib")
set(CMAKE_SIZE arm-none-eabi-size CACHE FILEPATH "Size tool")

# No OS to run test executables on: compiler checks build a static library.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)

set(HSMC_CPU_FLAGS "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft" CACHE STRING
    "CPU flags for the cross build")
# -Os here applies when no CMAKE_BUILD_TYPE is given (MinSizeRel also works).
set(CMAKE_C_FLAGS_INIT "${HSMC_CPU_FLAGS} -Os -ffunction-sections -fdata-sections")

# Libraries and packages come from the target, tools from the host.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
