# Install step of CMakeLists.txt (included by install(CODE)): writes and
# installs LIBDIR/pkgconfig/kcpx.pc and LIBDIR/cmake/kcpx/kcpx-config.cmake
# for the prefix being installed to. Inputs: KCPX_VERSION KCPX_DESCRIPTION
# KCPX_SONAME KCPX_SHARED_REALNAME KCPX_STAGE_DIR KCPX_TEMPLATE_DIR
# KCPX_LIBDIR KCPX_INCLUDEDIR, and CMAKE_INSTALL_PREFIX of the install.

file(READ "${KCPX_STAGE_DIR}/native-static-libs.txt" KCPX_NATIVE_STATIC_LIBS)
# The same libraries as a CMake link interface: -lm -> m, other flags as is.
string(REGEX REPLACE " +" ";" _kcpx_link "${KCPX_NATIVE_STATIC_LIBS}")
list(TRANSFORM _kcpx_link REPLACE "^-l" "" OUTPUT_VARIABLE KCPX_STATIC_LINK_INTERFACE)

# pkg-config: ${prefix}-relative paths unless GNUInstallDirs dirs are absolute.
set(KCPX_PREFIX "${CMAKE_INSTALL_PREFIX}")
foreach(_kcpx_dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${KCPX_${_kcpx_dir}}")
    set(KCPX_FULL_${_kcpx_dir} "${KCPX_${_kcpx_dir}}")
    set(KCPX_PC_${_kcpx_dir} "${KCPX_${_kcpx_dir}}")
  else()
    set(KCPX_FULL_${_kcpx_dir} "${CMAKE_INSTALL_PREFIX}/${KCPX_${_kcpx_dir}}")
    set(KCPX_PC_${_kcpx_dir} "\${prefix}/${KCPX_${_kcpx_dir}}")
  endif()
endforeach()

# CMake package: paths relative to its own directory, so it can be moved.
set(_kcpx_config_dir "${KCPX_FULL_LIBDIR}/cmake/kcpx")
file(RELATIVE_PATH KCPX_REL_LIBDIR "${_kcpx_config_dir}" "${KCPX_FULL_LIBDIR}")
file(RELATIVE_PATH KCPX_REL_INCLUDEDIR "${_kcpx_config_dir}" "${KCPX_FULL_INCLUDEDIR}")

set(_kcpx_out "${KCPX_STAGE_DIR}/install")
configure_file("${KCPX_TEMPLATE_DIR}/kcpx.pc.in" "${_kcpx_out}/kcpx.pc" @ONLY)
configure_file("${KCPX_TEMPLATE_DIR}/kcpx-config.cmake.in" "${_kcpx_out}/kcpx-config.cmake" @ONLY)
file(INSTALL "${_kcpx_out}/kcpx.pc" DESTINATION "${KCPX_FULL_LIBDIR}/pkgconfig")
file(INSTALL "${_kcpx_out}/kcpx-config.cmake" DESTINATION "${_kcpx_config_dir}")
