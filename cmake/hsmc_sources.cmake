# Source lists shared by the host build, the Zephyr build and the
# cross-compile size check. New files in core/ are picked up automatically.
file(GLOB HSMC_CORE_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../core/*.c)
list(SORT HSMC_CORE_SOURCES)
# X.509 with token keys (needs mbedTLS x509 + tls); the Zephyr module
# (zephyr.cmake) does not build these yet.
file(GLOB HSMC_X509_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../x509/*.c)
list(SORT HSMC_X509_SOURCES)
set(HSMC_PORT_posix_SOURCES  ${CMAKE_CURRENT_LIST_DIR}/../port/posix/hsmc_port_posix.c)
set(HSMC_PORT_static_SOURCES ${CMAKE_CURRENT_LIST_DIR}/../port/static/hsmc_port_static.c)
set(HSMC_PORT_zephyr_SOURCES ${CMAKE_CURRENT_LIST_DIR}/../port/zephyr/hsmc_port_zephyr.c)
