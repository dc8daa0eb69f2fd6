# Compatibility with upstream KCP's CMake package: skywind3000/kcp installs
# lib/cmake/kcp/kcp-config.cmake defining the target kcp::kcp. kcpx is a
# binary drop-in for it, so here find_package(kcp CONFIG) finds kcpx and
# kcp::kcp links kcpx::kcpx (the shared libkcpx.so; kcpx::kcpx_static is the
# static library). The version (kcp-config-version.cmake) is that of the
# ikcp.c release kcpx reproduces.
include(CMakeFindDependencyMacro)
find_dependency(kcpx CONFIG PATHS "${CMAKE_CURRENT_LIST_DIR}/../kcpx" NO_DEFAULT_PATH)
if(NOT TARGET kcp::kcp)
  add_library(kcp::kcp INTERFACE IMPORTED)
  set_target_properties(kcp::kcp PROPERTIES INTERFACE_LINK_LIBRARIES kcpx::kcpx)
endif()
