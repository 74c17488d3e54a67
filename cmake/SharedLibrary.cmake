# libpidlock.so: the same sources as the static `pidlock` target, with a
# SOVERSION and hidden visibility (only PIDLOCK_EXPORT declarations are
# exported). Exported as pidlock::pidlock_shared.
if(NOT PIDLOCK_BUILD_SHARED)
  return()
endif()
get_target_property(_pidlock_sources pidlock SOURCES)
list(TRANSFORM _pidlock_sources PREPEND "${PROJECT_SOURCE_DIR}/lib/" REGEX "^[^/$]")
get_target_property(_pidlock_links pidlock LINK_LIBRARIES)
add_library(pidlock_shared SHARED ${_pidlock_sources})
add_library(pidlock::pidlock_shared ALIAS pidlock_shared)
get_target_property(_pidlock_private_includes pidlock INCLUDE_DIRECTORIES)
target_include_directories(pidlock_shared
  PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  PRIVATE
    ${PROJECT_SOURCE_DIR}/lib ${_pidlock_private_includes})
target_link_libraries(pidlock_shared PUBLIC Boost::filesystem PRIVATE ${_pidlock_links})
target_compile_features(pidlock_shared PUBLIC cxx_std_17)
target_link_libraries(pidlock_shared PRIVATE $<BUILD_INTERFACE:pidlock_warnings>)
target_link_options(pidlock_shared PRIVATE -Wl,--no-undefined)
set_target_properties(pidlock_shared PROPERTIES
  OUTPUT_NAME pidlock
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR})
