/// \file
/// Guarding a data directory, as PostgreSQL's checkDataDir + CreateDataDirLockFile.
///
/// Thread safety: as LockManager.
#ifndef PIDLOCK_DATA_DIRECTORY_HPP
#define PIDLOCK_DATA_DIRECTORY_HPP

#include <pidlock/export.hpp>
#include <pidlock/lock_handle.hpp>
#include <pidlock/lock_manager.hpp>
#include <pidlock/options.hpp>

#include <pidlock/path.hpp>

#include <string>
#include <system_error>

namespace pidlock {

/// Options of guard_data_directory().
struct DataDirectoryOptions {
  /// Name of the lock file inside the directory.
  std::string lock_file_name = "pidlock.pid";
  /// Require the directory to be owned by the effective uid.
  bool require_owner = true;
  /// Refuse a directory that group or others may access (PostgreSQL refuses
  /// anything beyond 0700 or, with group access, 0750).
  bool allow_group_access = false;
  /// Options of the acquire; data_directory is overridden with the
  /// directory's canonical path.
  AcquireOptions acquire;
};

/// Checks that `directory` exists, is a directory (not a symlink to one is
/// fine: it is resolved to its canonical path first), is owned by the
/// effective user and is not accessible by group/others beyond the options,
/// then acquires `<canonical directory>/<lock_file_name>` recording the
/// canonical path as the data directory. A record naming a different data
/// directory (a lock file copied along with a restored backup) belongs to
/// no holder of this directory, and is reported by the detail of a stale
/// verdict. Fails with errc::unsafe_data_directory (the message says which
/// check failed and how to fix it) or any error of LockManager::acquire.
/// Does not wait.
PIDLOCK_EXPORT LockHandle guard_data_directory(
    LockManager& manager, const Path& directory,
    const DataDirectoryOptions& options = {});
/// The same, reporting failures through `ec`; when ec == errc::held and
/// `holder` is not null, *holder receives the verdict.
PIDLOCK_EXPORT LockHandle guard_data_directory(
    LockManager& manager, const Path& directory,
    const DataDirectoryOptions& options, std::error_code& ec,
    Inspection* holder = nullptr) noexcept;

}  // namespace pidlock

#endif  // PIDLOCK_DATA_DIRECTORY_HPP
