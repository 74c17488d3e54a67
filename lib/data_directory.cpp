#include <pidlock/data_directory.hpp>

#include "core/failure.hpp"
#include "core/log.hpp"

#include <boost/filesystem/operations.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

namespace pidlock {

using namespace detail;

namespace {

Failure check_directory(const boost::filesystem::path& canonical, const DataDirectoryOptions& options) {
  struct stat st {};
  if (sys().fstatat(AT_FDCWD, canonical.c_str(), &st, 0) != 0) return system_failure("stat data directory");
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return system_failure("check data directory");
  }
  if (options.require_owner && st.st_uid != sys().geteuid()) {
    return pidlock_failure(errc::unsafe_data_directory, "check data directory",
                           "it is owned by uid " + std::to_string(st.st_uid) + ", not by the effective uid " +
                               std::to_string(sys().geteuid()) + "; run as its owner or chown it");
  }
  mode_t forbidden = options.allow_group_access ? (S_IWGRP | S_IRWXO) : (S_IRWXG | S_IRWXO);
  if ((st.st_mode & forbidden) != 0) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return pidlock_failure(errc::unsafe_data_directory, "check data directory",
                           std::string("its permissions are ") + mode + "; it must be " +
                               (options.allow_group_access ? "u=rwx (0700) or u=rwx,g=rx (0750)" : "u=rwx (0700)") +
                               ": chmod it");
  }
  return {};
}

}  // namespace

LockHandle guard_data_directory(LockManager& manager, const Path& directory,
                                const DataDirectoryOptions& options, std::error_code& ec,
                                Inspection* holder) noexcept {
  ec.clear();
  try {
    boost::system::error_code fs_ec;
    boost::filesystem::path canonical = boost::filesystem::canonical(directory, fs_ec);
    if (fs_ec) {
      ec = std::error_code(fs_ec.value(), std::system_category());
      PIDLOCK_LOG(error) << describe_error(ec, "resolve data directory", directory.string());
      return {};
    }
    if (Failure f = check_directory(canonical, options)) {
      log_failure(f, canonical.string());
      ec = f.code;
      return {};
    }
    AcquireOptions acquire = options.acquire;
    acquire.data_directory = canonical;
    return manager.acquire(canonical / options.lock_file_name, acquire, ec, holder);
  } catch (const std::bad_alloc&) {
    ec = std::make_error_code(std::errc::not_enough_memory);
  }
  return {};
}

LockHandle guard_data_directory(LockManager& manager, const Path& directory,
                                const DataDirectoryOptions& options) {
  boost::filesystem::path canonical = boost::filesystem::canonical(directory);
  if (Failure f = check_directory(canonical, options)) throw_failure(f, canonical.string());
  AcquireOptions acquire = options.acquire;
  acquire.data_directory = canonical;
  return manager.acquire(canonical / options.lock_file_name, acquire);
}

}  // namespace pidlock
