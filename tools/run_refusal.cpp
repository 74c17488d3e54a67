#include "run_refusal.hpp"

#include "inspection_output.hpp"

#include <climits>
#include <cstdlib>

namespace pidlock::cli {

namespace {

// The canonical folder of `lock_file`, or "" if it cannot be resolved.
std::string folder_of(const std::string& lock_file) {
  const std::size_t slash = lock_file.rfind('/');
  const std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : lock_file.substr(0, slash);
  char resolved[PATH_MAX];
  return ::realpath(folder.c_str(), resolved) ? std::string(resolved) : std::string();
}

std::string holder_part(const std::string& lock_file, const HolderRecord& r) {
  std::string details;
  auto add = [&details](const std::string& item) { details += (details.empty() ? "" : ", ") + item; };
  if (r.start_time > 0) add("started " + format_time(r.start_time));
  if (!r.host.empty()) add("host " + r.host);
  if (!r.status.empty()) add("status " + r.status);
  if (!r.data_directory.empty() && r.data_directory != folder_of(lock_file))
    add("data directory " + r.data_directory);
  return " by pid " + std::to_string(r.pid) + (details.empty() ? "" : " (" + details + ")");
}

}  // namespace

std::string refusal_message(const RunArguments& args, const Inspection& holder) {
  std::string msg;
  if (args.timeout) msg = "timed out after " + args.timeout_text + " s; ";
  msg += "not running \"" + args.command_name + "\": ";
  const std::string lock = "\"" + args.lock_file + "\"";
  if (holder.reason == Reason::kNotALockRecord) {
    return msg + lock + " is not a lock record [" + holder.detail +
           "]; pidlock leaves it alone: check the lock path.";
  }
  msg += "lock " + lock + (holder.verdict == Verdict::kUnknown ? " counts as held" : " is held");
  if (holder.holder) msg += holder_part(args.lock_file, *holder.holder);
  msg += std::string(" [") + to_string(holder.verdict) + ": " + holder.detail + "]";
  // A job's background child that kept the lock: name it.
  msg += inheritors_note(args.lock_file, holder);
  if (holder.verdict == Verdict::kUnknown)
    msg += ". The holder cannot be checked from here; if you are sure no holder is running, remove the file.";
  return msg;
}

}  // namespace pidlock::cli
