# The API reference: `make docs` (or `cmake --build . --target docs`) runs
# Doxygen on include/pidlock/ and writes HTML to <build>/docs/html. Not built
# by default and not part of ctest. Doxygen runs with WARN_AS_ERROR and
# WARN_IF_UNDOCUMENTED, so an undocumented public declaration fails the
# target: the headers are the contract (see docs/Doxyfile.in).
#
# Inside another project (add_subdirectory, FetchContent) the target is
# called pidlock_docs, so that it cannot clash with the parent's own `docs`.
find_package(Doxygen QUIET)
if(PIDLOCK_TOP_LEVEL)
  set(_pidlock_docs_target docs)
else()
  set(_pidlock_docs_target pidlock_docs)
endif()
if(DOXYGEN_FOUND)
  set(PIDLOCK_DOCS_OUTPUT_DIR ${PROJECT_BINARY_DIR}/docs)
  configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
  file(GLOB _pidlock_public_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/pidlock/*.hpp)
  add_custom_target(${_pidlock_docs_target}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PIDLOCK_DOCS_OUTPUT_DIR}
    COMMAND Doxygen::doxygen ${PROJECT_BINARY_DIR}/Doxyfile
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
    DEPENDS ${PROJECT_BINARY_DIR}/Doxyfile ${_pidlock_public_headers}
    COMMENT "Doxygen: API reference in ${PIDLOCK_DOCS_OUTPUT_DIR}/html"
    VERBATIM)
else()
  message(STATUS "pidlock: Doxygen not found; no ${_pidlock_docs_target} target")
endif()
