# Build step of CMakeLists.txt (cmake -P): release-builds the library with
# cargo, then stages the installable files in STAGE_DIR: SHARED_REALNAME, the
# SONAME and libkcpx.so symlinks, libkcpx.a, and native-static-libs.txt.
# Inputs: CARGO CARGO_TARGET_DIR SOURCE_DIR STAGE_DIR SHARED_REALNAME SONAME
# READELF (optional; checks the SONAME build.rs linked in), OBJCOPY (optional;
# strips the debug info of the static library).
cmake_minimum_required(VERSION 3.18)

set(ENV{CARGO_TARGET_DIR} "${CARGO_TARGET_DIR}")
execute_process(
  COMMAND "${CARGO}" rustc --release --locked --lib
          --manifest-path "${SOURCE_DIR}/Cargo.toml"
          -- --print native-static-libs
  WORKING_DIRECTORY "${SOURCE_DIR}"
  RESULT_VARIABLE rc
  ERROR_VARIABLE cargo_stderr
  ECHO_ERROR_VARIABLE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cargo failed (${rc})")
endif()
# rustc prints "note: native-static-libs: -lgcc_s -lutil ..." for the
# staticlib; cargo replays it when the library is already fresh.
if(NOT cargo_stderr MATCHES "native-static-libs: ([^\r\n]*)")
  message(FATAL_ERROR "rustc printed no native-static-libs line")
endif()
string(STRIP "${CMAKE_MATCH_1}" native_static_libs)

set(out "${CARGO_TARGET_DIR}/release")
if(READELF)
  execute_process(COMMAND "${READELF}" -d "${out}/libkcpx.so" OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR NOT dynamic MATCHES "\\(SONAME\\)[^\n]*\\[([^]\n]*)\\]")
    message(FATAL_ERROR "${out}/libkcpx.so has no SONAME")
  endif()
  if(NOT CMAKE_MATCH_1 STREQUAL SONAME)
    message(FATAL_ERROR "build.rs links SONAME ${CMAKE_MATCH_1} but cmake/CMakeLists.txt "
      "(KCPX_ABI_VERSION) installs ${SHARED_REALNAME} as ${SONAME}: change them together")
  endif()
endif()

file(MAKE_DIRECTORY "${STAGE_DIR}")
configure_file("${out}/libkcpx.so" "${STAGE_DIR}/${SHARED_REALNAME}" COPYONLY)
# The archive bundles the objects of Rust's standard library as shipped, with
# their debug info and LLVM bitcode: ~24 MB, of which a program links only
# what it calls. Installed without them (~4.5 MB); the code is unchanged.
if(OBJCOPY)
  execute_process(
    COMMAND "${OBJCOPY}" --strip-debug --remove-section=.llvmbc --remove-section=.llvmcmd
            "${out}/libkcpx.a" "${STAGE_DIR}/libkcpx.a"
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${OBJCOPY} could not strip ${out}/libkcpx.a")
  endif()
else()
  message(WARNING "no objcopy found: installing libkcpx.a with debug info (~24 MB)")
  configure_file("${out}/libkcpx.a" "${STAGE_DIR}/libkcpx.a" COPYONLY)
endif()
file(CREATE_LINK "${SHARED_REALNAME}" "${STAGE_DIR}/${SONAME}" SYMBOLIC)
file(CREATE_LINK "${SONAME}" "${STAGE_DIR}/libkcpx.so" SYMBOLIC)
file(WRITE "${STAGE_DIR}/native-static-libs.txt" "${native_static_libs}")
