# hsmc inside a Zephyr build (included by the top CMakeLists.txt when
# ZEPHYR_BASE is set; zephyr/module.yml points Zephyr at that file and at
# the top-level Kconfig).
#
# The Kconfig symbols reach the code through Zephyr's autoconf.h, which
# Zephyr forces into every compilation; config/hsmc_config.h maps each
# CONFIG_HSMC_<NAME> onto HSMC_<NAME>.
#
# The PKCS#11 header is p11-kit's: point HSMC_PKCS11_INCLUDE_DIR at the
# directory holding p11-kit/pkcs11.h (e.g. -DHSMC_PKCS11_INCLUDE_DIR=
# /usr/include/p11-kit-1, or a copy of p11-kit's header kept with the
# application). The token is linked into the image: give its library with
# HSMC_STATIC_TOKEN_LIB or link it from the application.

get_filename_component(HSMC_ROOT ${CMAKE_CURRENT_LIST_DIR}/.. ABSOLUTE)

if(EXISTS /usr/include/p11-kit-1/p11-kit/pkcs11.h)
  set(_hsmc_pkcs11_default /usr/include/p11-kit-1)
else()
  set(_hsmc_pkcs11_default "")
endif()
set(HSMC_PKCS11_INCLUDE_DIR "${_hsmc_pkcs11_default}" CACHE PATH
    "Directory that contains p11-kit/pkcs11.h")
set(HSMC_STATIC_TOKEN_LIB "" CACHE FILEPATH
    "Token library providing C_GetFunctionList (optional: the application may link it)")

if(CONFIG_HSMC)
  if(NOT EXISTS "${HSMC_PKCS11_INCLUDE_DIR}/p11-kit/pkcs11.h")
    message(FATAL_ERROR "hsmc: p11-kit/pkcs11.h not found in "
            "HSMC_PKCS11_INCLUDE_DIR='${HSMC_PKCS11_INCLUDE_DIR}'; set it to the "
            "directory that contains p11-kit/pkcs11.h (libp11-kit-dev: /usr/include/p11-kit-1)")
  endif()

  include(${CMAKE_CURRENT_LIST_DIR}/hsmc_sources.cmake)

  zephyr_library_named(hsmc)
  zephyr_library_sources(${HSMC_CORE_SOURCES})
  if(CONFIG_HSMC_PORT_STATIC)
    zephyr_library_sources(${HSMC_PORT_static_SOURCES})
  else()
    zephyr_library_sources(${HSMC_PORT_zephyr_SOURCES})
  endif()

  # Public: the application includes <hsmc/hsmc.h>, which needs these.
  zephyr_include_directories(${HSMC_ROOT}/include ${HSMC_ROOT}/config
                             ${HSMC_PKCS11_INCLUDE_DIR})
  # Private to the library: the port header and core internals.
  zephyr_library_include_directories(${HSMC_ROOT}/port ${HSMC_ROOT}/core)

  if(HSMC_STATIC_TOKEN_LIB)
    zephyr_library_link_libraries(${HSMC_STATIC_TOKEN_LIB})
  endif()
  # mbedTLS (key import, X.509): Zephyr's mbedTLS module, enabled with
  # CONFIG_MBEDTLS, provides the headers and the library as target mbedTLS.
  if(TARGET mbedTLS)
    zephyr_library_link_libraries(mbedTLS)
  endif()
endif()
