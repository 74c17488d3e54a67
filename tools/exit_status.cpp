#include "cli.hpp"

#include <pidlock/error.hpp>
#include <pidlock/logging.hpp>

#include <cerrno>
#include <cstdio>

namespace pidlock::cli {

void print_error(std::string_view message) {
  std::fprintf(stderr, "pidlock: %.*s\n", static_cast<int>(message.size()), message.data());
}

int exit_status_for(const std::error_code& code) noexcept {
  if (code == errc::held) return kHeld;
  if (code == errc::misconfigured) return kConfig;
  if (code.category() != std::system_category() && code.category() != std::generic_category())
    return kSoftware;  // pidlock's own conditions: symlink, hard link, lock lost, ...
  switch (code.value()) {
    case EACCES:
    case EPERM:
      return kNoPermission;
    // The path names no folder in which the lock file could be created.
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
      return kCannotCreate;
    // The file system cannot hold the lock file where it was asked for.
    case EIO:
    case ENOSPC:
    case EDQUOT:
    case EROFS:
    case EFBIG:
    case ESTALE:
    case ENXIO:
    case EXDEV:
      return kIoError;
    default:
      return kSoftware;
  }
}

}  // namespace pidlock::cli
