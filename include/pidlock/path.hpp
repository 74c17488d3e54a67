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

class Path : public boost::filesystem::path {
 public:
  using boost::filesystem::path::path;
  Path() = default;
  Path(const boost::filesystem::path& path) : boost::filesystem::path(path) {}
  Path(boost::filesystem::path&& path) noexcept : boost::filesystem::path(std::move(path)) {}
  /// The same bytes: both types hold a native (byte string) path on Linux.
  Path(const std::filesystem::path& path) : boost::filesystem::path(path.native()) {}

  /// The same path as a std::filesystem::path.
  operator std::filesystem::path() const { return std::filesystem::path(native()); }
};

}  // namespace pidlock

#endif  // PIDLOCK_PATH_HPP
