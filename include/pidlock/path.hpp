/// \file
/// pidlock::Path: the path type of the public API, which accepts both
/// boost::filesystem::path and std::filesystem::path.
///
/// Path is a boost::filesystem::path (it derives from it and adds no data),
/// so every existing use of a boost path keeps working, and it also
/// converts from and to std::filesystem::path:
/// \code
///   std::filesystem::path lock = "/run/mydaemon.pid";
///   pidlock::LockHandle h = manager.acquire(lock);   // accepted as is
///   std::filesystem::path held = h.path();           // and back
/// \endcode
/// Strings and string literals convert as they do to a boost path.
///
/// Thread safety: as boost::filesystem::path (a value type).
#ifndef PIDLOCK_PATH_HPP
#define PIDLOCK_PATH_HPP

#include <boost/filesystem/path.hpp>

#include <filesystem>
#include <utility>

namespace pidlock {

/// A boost::filesystem::path that also converts from and to
/// std::filesystem::path (see path.hpp).
class Path : public boost::filesystem::path {
 public:
  /// Every constructor of boost::filesystem::path (strings, literals, ...).
  using boost::filesystem::path::path;
  /// The empty path.
  Path() = default;
  /// A copy of a boost path.
  Path(const boost::filesystem::path& path) : boost::filesystem::path(path) {}
  /// A boost path, moved.
  Path(boost::filesystem::path&& path) noexcept : boost::filesystem::path(std::move(path)) {}
  /// A std path: the same bytes (both types hold a native byte string on Linux).
  Path(const std::filesystem::path& path) : boost::filesystem::path(path.native()) {}

  /// The same path as a std::filesystem::path.
  operator std::filesystem::path() const { return std::filesystem::path(native()); }
};

}  // namespace pidlock

#endif  // PIDLOCK_PATH_HPP
