#include <pidlock/error.hpp>

#include "core/judge.hpp"

namespace pidlock {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pidlock"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::held: return "the lock is held by another holder";
      case errc::already_held_by_this_process: return "the lock is already held by this process";
      case errc::not_a_regular_file: return "not a regular file";
      case errc::symlink_at_lock_path: return "the lock path is a symbolic link (not followed)";
      case errc::hard_linked_lock_file: return "the file has other hard links, so it is not a lock file of ours";
      case errc::too_many_attempts: return "gave up after too many attempts to create the lock file";
      case errc::lock_lost: return "the lock is no longer the one this handle took (its file was replaced or removed, or its lease ended)";
      case errc::not_held: return "the handle holds no lock";
      case errc::invalid_argument: return "invalid argument";
      case errc::unsafe_data_directory: return "unsafe data directory";
      case errc::cancelled: return "cancelled";
      case errc::not_a_socket: return "not a socket; refusing to remove it";
      case errc::misconfigured: return "the lock store is misconfigured";
    }
    return "unknown pidlock error";
  }
};

std::string held_message(const std::string& path, const Inspection& holder) {
  std::string msg = "lock file \"" + path + "\" already exists";
  if (holder.holder) {
    const HolderRecord& rec = *holder.holder;
    msg += ": is another instance (PID " + std::to_string(rec.pid);
    if (rec.start_time > 0) msg += ", started " + detail::format_time(rec.start_time);
    if (!rec.host.empty()) msg += ", host " + rec.host;
    if (!rec.status.empty()) msg += ", status " + rec.status;
    msg += rec.data_directory.empty() ? std::string(") holding it?")
                                      : ") using data directory \"" + rec.data_directory + "\"?";
  }
  msg += std::string(" [") + to_string(holder.verdict) + ": " + holder.detail + "]";
  if (holder.reason == Reason::kNotALockRecord) {
    msg += " It is not a lock record, so pidlock leaves it alone; check the lock path.";
  } else if (holder.verdict == Verdict::kUnknown) {
    msg += " The holder cannot be checked from here, so the lock counts as held; "
           "if you are sure no holder is running, remove the file.";
  }
  return msg;
}

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category instance;
  return instance;
}

std::string describe_error(const std::error_code& code, const std::string& operation,
                           const std::string& path, const std::string& detail) {
  std::string s = operation;
  if (!path.empty()) s += " \"" + path + "\"";
  s += ": " + code.message();
  if (!detail.empty()) s += " (" + detail + ")";
  return s;
}

Error::Error(std::error_code code, std::string operation, std::string path, const std::string& detail)
    : std::system_error(code),
      message_(describe_error(code, operation, path, detail)),
      operation_(std::move(operation)),
      path_(std::move(path)) {}

LockHeldError::LockHeldError(const std::string& path, Inspection holder)
    : Error(make_error_code(errc::held), "acquire", path),
      holder_(std::move(holder)) {
  set_message(held_message(path, holder_));
}


}  // namespace pidlock
