# Install rules: libhsmc.a, the public headers, the hsmc command (when
# built), a CMake package and a pkg-config file. Included at the end of the
# top CMakeLists.txt, after the hsmc target exists.
#
# Consumers:
#   find_package(hsmc 0.1 REQUIRED)            # CMAKE_PREFIX_PATH=<prefix>
#   target_link_libraries(app PRIVATE hsmc::hsmc)
# or
#   cc app.c $(pkg-config --cflags --libs --static hsmc)   # PKG_CONFIG_PATH
#
# Layout under the prefix:
#   include/hsmc/*.h, include/hsmc_config.h
#   <libdir>/libhsmc.a
#   <libdir>/cmake/hsmc/{hsmcConfig,hsmcConfigVersion,hsmcTargets*}.cmake
#   <libdir>/pkgconfig/hsmc.pc
#   bin/hsmc

include(CMakePackageConfigHelpers)

set(HSMC_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/hsmc" CACHE STRING
    "Where hsmcConfig.cmake is installed (relative to the prefix)")
mark_as_advanced(HSMC_INSTALL_CMAKEDIR)

# The include directories come from the target's INSTALL_INTERFACE.
install(TARGETS hsmc EXPORT hsmcTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/hsmc
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
# The public headers include it as "hsmc_config.h", so it sits beside hsmc/.
install(FILES ${PROJECT_SOURCE_DIR}/config/hsmc_config.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The hsmc command installs itself (cli/CMakeLists.txt).

# Link dependencies of the static archive, as the hsmc target records them.
get_target_property(_hsmc_links hsmc INTERFACE_LINK_LIBRARIES)
if(NOT _hsmc_links)
  set(_hsmc_links "")
endif()
set(HSMC_NEEDS_THREADS FALSE)
set(HSMC_PC_LIBS_PRIVATE "")
foreach(_hsmc_lib IN LISTS _hsmc_links)
  if(_hsmc_lib STREQUAL "Threads::Threads")
    set(HSMC_NEEDS_THREADS TRUE)
  elseif(_hsmc_lib MATCHES "^hsmc::(mbedcrypto|mbedx509|mbedtls)$")
    # -L only when the library is outside the compiler's default search path.
    set(_hsmc_mbed_name "${CMAKE_MATCH_1}")
    string(TOUPPER "${_hsmc_mbed_name}" _hsmc_mbed_up)
    get_filename_component(_hsmc_mbed_dir "${HSMC_${_hsmc_mbed_up}_LIBRARY}" DIRECTORY)
    if(_hsmc_mbed_dir AND NOT _hsmc_mbed_dir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES
       AND NOT HSMC_PC_LIBS_PRIVATE MATCHES " -L${_hsmc_mbed_dir}( |$)")
      string(APPEND HSMC_PC_LIBS_PRIVATE " -L${_hsmc_mbed_dir}")
    endif()
    string(APPEND HSMC_PC_LIBS_PRIVATE " -l${_hsmc_mbed_name}")
  elseif(_hsmc_lib MATCHES "^[A-Za-z0-9_.+-]+$")
    string(APPEND HSMC_PC_LIBS_PRIVATE " -l${_hsmc_lib}")   # e.g. dl
  elseif(IS_ABSOLUTE "${_hsmc_lib}")
    string(APPEND HSMC_PC_LIBS_PRIVATE " ${_hsmc_lib}")     # a token library
  endif()
endforeach()
if(HSMC_NEEDS_THREADS)
  string(APPEND HSMC_PC_LIBS_PRIVATE " -lpthread")
endif()
string(STRIP "${HSMC_PC_LIBS_PRIVATE}" HSMC_PC_LIBS_PRIVATE)
# mbedTLS headers outside the default search path (a private build).
set(HSMC_PC_CFLAGS_EXTRA "")
if(HSMC_MBEDTLS_INCLUDE_DIR AND NOT HSMC_MBEDTLS_INCLUDE_DIR IN_LIST CMAKE_C_IMPLICIT_INCLUDE_DIRECTORIES)
  set(HSMC_PC_CFLAGS_EXTRA " -I${HSMC_MBEDTLS_INCLUDE_DIR}")
endif()

# CMake package. The exported hsmc::hsmc carries the p11-kit include
# directory and its link dependencies (mbedTLS's tls, x509 and crypto
# libraries, dl and Threads for the posix port, the token library for the
# static port). hsmcConfig.cmake recreates hsmc::mbedtls, hsmc::mbedx509
# and hsmc::mbedcrypto, searching first where the build found them.
foreach(_hsmc_mbed_up MBEDCRYPTO MBEDX509 MBEDTLS)
  if(IS_ABSOLUTE "${HSMC_${_hsmc_mbed_up}_LIBRARY}")
    get_filename_component(HSMC_${_hsmc_mbed_up}_LIBRARY_DIR "${HSMC_${_hsmc_mbed_up}_LIBRARY}" DIRECTORY)
  else()
    set(HSMC_${_hsmc_mbed_up}_LIBRARY_DIR "")
  endif()
endforeach()
install(EXPORT hsmcTargets NAMESPACE hsmc::
        DESTINATION ${HSMC_INSTALL_CMAKEDIR} FILE hsmcTargets.cmake)
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/hsmcConfig.cmake.in
  ${PROJECT_BINARY_DIR}/hsmcConfig.cmake
  INSTALL_DESTINATION ${HSMC_INSTALL_CMAKEDIR})
# 0.x: a new minor version may break the API, so only the same minor matches.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/hsmcConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/hsmcConfig.cmake
              ${PROJECT_BINARY_DIR}/hsmcConfigVersion.cmake
        DESTINATION ${HSMC_INSTALL_CMAKEDIR})

# pkg-config. The prefix is derived from the .pc file's own location so
# `cmake --install --prefix <dir>` and relocated trees work.
set(HSMC_PC_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
if(IS_ABSOLUTE "${HSMC_PC_DIR}")
  set(HSMC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  set(HSMC_PC_PREFIX "\${pcfiledir}")
  string(REPLACE "/" ";" _hsmc_pc_parts "${HSMC_PC_DIR}")
  foreach(_hsmc_part IN LISTS _hsmc_pc_parts)
    if(_hsmc_part AND NOT _hsmc_part STREQUAL ".")
      string(APPEND HSMC_PC_PREFIX "/..")
    endif()
  endforeach()
endif()
foreach(_hsmc_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_hsmc_dir}}")
    set(HSMC_PC_${_hsmc_dir} "${CMAKE_INSTALL_${_hsmc_dir}}")
  else()
    set(HSMC_PC_${_hsmc_dir} "\${prefix}/${CMAKE_INSTALL_${_hsmc_dir}}")
  endif()
endforeach()
configure_file(${CMAKE_CURRENT_LIST_DIR}/hsmc.pc.in ${PROJECT_BINARY_DIR}/hsmc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/hsmc.pc DESTINATION ${HSMC_PC_DIR})
