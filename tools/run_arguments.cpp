#include "run_arguments.hpp"

#include "arguments.hpp"
#include "cli.hpp"

#include <grp.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace pidlock::cli {

namespace {

const char kRunHelp[] =
    "Usage: pidlock run [OPTION]... LOCKFILE [--] COMMAND [ARG]...\n"
    "  or:  pidlock run [OPTION]... LOCKFILE -c 'COMMAND STRING'\n"
    "Take the lock LOCKFILE, run COMMAND while holding it, then remove it.\n"
    "\n"
    "While COMMAND runs the lock file names COMMAND's pid. pidlock exits\n"
    "with COMMAND's status (128+N if signal N killed it, 127 if it was not\n"
    "found, 126 if it could not be executed). SIGTERM, SIGINT and SIGHUP are\n"
    "passed on to COMMAND. COMMAND starts at the first word after LOCKFILE\n"
    "that is not an option, or after '--'.\n"
    "\n"    "COMMAND inherits the lock's descriptor (unless -o), and so do its\n"
    "children: the lock stays held, and its file stays, until the last\n"
    "process holding that descriptor exits, even if COMMAND exits first.\n"
    "\n"
    "  -n, --nonblock              fail at once if the lock is held (the\n"
    "                              default)\n"
    "      --wait [SECONDS]        wait until the lock can be taken (at most\n"
    "                              SECONDS, if a number follows)\n"
    "  -w, --timeout SECONDS       wait at most SECONDS (fractions allowed;\n"
    "                              0 means do not wait)\n"
    "  -E, --conflict-exit-code N  exit with N instead of 75 when the lock\n"
    "                              is held by someone else\n"
    "  -q, --quiet                 print nothing when the lock is held\n"
    "  -c, --command STRING        run STRING with /bin/sh -c\n"
    "  -o, --close                 COMMAND does not inherit the lock: it is\n"
    "                              held by pidlock alone\n"
    "  -x, -e, --exclusive         accepted for flock(1): every lock is\n"
    "                              exclusive\n"
    "      --mode OCTAL            permissions of the lock file (default\n"
    "                              0600; 0640 lets its group inspect it)\n"
    "      --group GROUP           group of the lock file (a name or a GID)\n"
    "      --data-dir DIR          record DIR as the data directory\n"
    "                              (default: the lock file's folder)\n"
    "      --kill-after SECONDS    etcd locks: when the lock is lost, SIGKILL\n"
    "                              COMMAND this long after SIGTERM (at most\n"
    "                              halfway to the lease's end; that is the\n"
    "                              default)\n"
    "      --verbose               show the library's log records\n"
    "  -h, --help                  show this help and exit\n"
    "\n"
    "COMMAND's environment has PIDLOCK_LOCK (LOCKFILE) and, for an etcd://\n"
    "lock, PIDLOCK_FENCING_TOKEN. An etcd lock's COMMAND is killed if\n"
    "pidlock dies, and stopped if the lock is lost.\n"
    "\n"
    "Exit status: COMMAND's, or 75 if the lock is held, 79 if the lock was\n"
    "lost while COMMAND ran (an etcd lock's COMMAND is stopped; a lock file\n"
    "deleted, replaced or rewritten is found so when COMMAND ends), 64 on a\n"
    "usage error, 73 if the lock file cannot be created there (no such\n"
    "folder), 77 on a permission error, 78 if the lock's address or store\n"
    "is misconfigured, 74 on an I/O error, 70 otherwise.\n";

// /bin/sh, as system(3) and cron use it; flock(1) uses $SHELL.
char kShell[] = "/bin/sh";
char kShellCommandFlag[] = "-c";

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// The lock file's permission bits: octal, at most 0777 with the owner's
// read and write (the owner rewrites its record) and no write for others
// (anyone could then rewrite the record of the lock they do not hold).
mode_t parse_mode(std::string_view option, std::string_view text) {
  unsigned value = 0;
  bool ok = !text.empty() && text.size() <= 4;
  for (char c : text) {
    ok = ok && c >= '0' && c <= '7';
    value = value * 8 + static_cast<unsigned>(c - '0');
  }
  if (!ok || value > 0777)
    throw UsageError("run", "invalid value " + quoted(text) + " for '" + std::string(option) +
                                "': expected permission bits in octal, like 0640");
  if ((value & 0600) != 0600)
    throw UsageError("run", "mode " + quoted(text) + " leaves the owner unable to read and write its lock file");
  if ((value & 0002) != 0)
    throw UsageError("run", "mode " + quoted(text) +
                                " lets every user rewrite the lock file; give a group write access instead "
                                "(--group)");
  return static_cast<mode_t>(value);
}

gid_t parse_group(std::string_view option, std::string_view text) {
  const std::string name(text);
  if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) {
    errno = 0;
    const unsigned long long gid = std::strtoull(name.c_str(), nullptr, 10);
    if (errno != 0 || gid >= static_cast<gid_t>(-1))
      throw UsageError("run", "invalid GID " + quoted(text) + " for '" + std::string(option) + "'");
    return static_cast<gid_t>(gid);
  }
  const struct group* found = name.empty() ? nullptr : ::getgrnam(name.c_str());
  if (!found) throw UsageError("run", "no group named " + quoted(text) + " for '" + std::string(option) + "'");
  return found->gr_gid;
}

// Why pidlock cannot honour a flock(1) option.
std::string why_unsupported(std::string_view option) {
  std::string why;
  if (option == "-s" || option == "--shared")
    why = "pidlock has no shared locks: a lock has one holder, whose pid the lock file records "
          "(use flock(1) for readers-writer locking)";
  else if (option == "-u" || option == "--unlock" || option == "--fd")
    why = "pidlock has no descriptor form (exec 9>LOCK; flock 9): run the locked commands as "
          "pidlock run LOCK -- COMMAND, or -c 'COMMAND STRING'";
  else if (option == "-F" || option == "--no-fork")
    why = "pidlock run stays in front of COMMAND to remove the lock file when COMMAND ends";
  else
    why = "pidlock takes its own kind of kernel lock (open-file-description locks)";
  return why;
}

[[noreturn]] void unsupported(std::string_view option) {
  throw UsageError("run", "option '" + std::string(option) + "' is not supported: " + why_unsupported(option));
}

class RunParser {
 public:
  RunParser(int argc, char** argv) : argc_(argc), argv_(argv), reader_("run", argc, argv) {}

  std::optional<RunArguments> parse() {
    while (reader_.next()) {
      if (reader_.at_option()) {
        if (!option()) return std::nullopt;
      } else if (lock_file_seen_) {
        command_start_ = reader_.position();  // flock(1)'s LOCKFILE COMMAND [ARG]...
        break;
      } else {
        out_.lock_file = std::string(reader_.operand());
        lock_file_seen_ = true;
      }
    }
    if (reader_.double_dash()) command_start_ = reader_.rest();
    finish();
    return std::move(out_);
  }

 private:
  // Handles the current option; false after --help.
  bool option() {
    const std::string_view opt = reader_.option();
    if (opt == "--help" || opt == "-h") {
      reader_.expect_no_value();
      std::fputs(kRunHelp, stdout);
      return false;
    }
    if (opt == "--wait") {
      // flock(1)'s --wait takes SECONDS; pidlock's alone waits for ever.
      out_.wait = true;
      if (std::optional<std::string_view> seconds = reader_.value_if(is_seconds)) set_timeout(opt, *seconds);
    } else if (opt == "--timeout" || opt == "-w") {
      set_timeout(opt, reader_.value());
    } else if (opt == "--nonblock" || opt == "--nonblocking" || opt == "--nb" || opt == "-n") {
      reader_.expect_no_value();
      nonblock_ = true;
    } else if (opt == "--conflict-exit-code" || opt == "-E") {
      out_.conflict_exit_status = parse_exit_status("run", opt, reader_.value());
    } else if (opt == "--command" || opt == "-c") {
      if (shell_command_) throw UsageError("run", "option '" + std::string(opt) + "' given twice");
      shell_command_ = reader_.value();
    } else if (!flag(opt) && !setting(opt)) {
      if (opt == "-s" || opt == "--shared" || opt == "-u" || opt == "--unlock" || opt == "-F" ||
          opt == "--no-fork" || opt == "--fd" || opt == "--fcntl" || opt == "--start" || opt == "--length")
        unsupported(opt);
      reader_.unknown_option();
    }
    return true;
  }

  // Options without a value; false if `opt` is none of them.
  bool flag(std::string_view opt) {
    if (opt == "--exclusive" || opt == "-x" || opt == "-e") {
      // Every pidlock lock is exclusive.
    } else if (opt == "--close" || opt == "-o") {
      out_.close_before_exec = true;
    } else if (opt == "--quiet" || opt == "-q") {
      out_.quiet = true;
    } else if (opt == "--verbose") {
      enable_verbose_logging();
    } else {
      return false;
    }
    reader_.expect_no_value();
    return true;
  }

  // pidlock's own options with a value; false if `opt` is none of them.
  bool setting(std::string_view opt) {
    if (opt == "--data-dir") {
      out_.data_directory = std::string(reader_.value());
      if (out_.data_directory.empty()) throw UsageError("run", "option '--data-dir' needs a directory");
    } else if (opt == "--kill-after") {
      out_.kill_after = parse_seconds("run", opt, reader_.value());
    } else if (opt == "--mode") {
      out_.mode = parse_mode(opt, reader_.value());
      file_option_ = "--mode";
    } else if (opt == "--group") {
      out_.group = parse_group(opt, reader_.value());
      file_option_ = "--group";
    } else {
      return false;
    }
    return true;
  }

  void set_timeout(std::string_view opt, std::string_view text) {
    out_.timeout_text = std::string(text);
    out_.timeout = parse_seconds("run", opt, text);
  }

  void finish() {
    if (!lock_file_seen_) throw UsageError("run", "missing LOCKFILE");
    expect_lock_file("run", out_.lock_file);
    if (file_option_ && out_.lock_file.rfind("etcd://", 0) == 0)
      throw UsageError("run", "option '" + std::string(file_option_) + "' is for lock files; an etcd lock has no file");
    // flock(1): -n wins over a timeout, and a timeout of 0 means -n.
    if (nonblock_ || (out_.timeout && out_.timeout->count() == 0)) {
      out_.wait = false;
      out_.timeout.reset();
    }
    const bool has_command = command_start_ >= 0 && command_start_ < argc_;
    if (shell_command_) {
      if (has_command)
        throw UsageError("run", "both '-c' and COMMAND " + quoted(argv_[command_start_]) + " given; give one");
      out_.command = {kShell, kShellCommandFlag, const_cast<char*>(shell_command_->data()), nullptr};
      out_.command_name = std::string(*shell_command_);
      return;
    }
    if (!has_command) {
      std::string message = "missing COMMAND after LOCKFILE";
      if (out_.lock_file.find_first_not_of("0123456789") == std::string::npos)  // flock 9
        message += "; if " + quoted(out_.lock_file) + " is a descriptor: " + why_unsupported("--fd");
      throw UsageError("run", message);
    }
    out_.command.assign(argv_ + command_start_, argv_ + argc_);
    out_.command.push_back(nullptr);
    out_.command_name = argv_[command_start_];
  }

  int argc_;
  char** argv_;
  ArgumentReader reader_;
  RunArguments out_;
  bool lock_file_seen_ = false;
  bool nonblock_ = false;
  int command_start_ = -1;
  const char* file_option_ = nullptr;  // --mode or --group, if given
  std::optional<std::string_view> shell_command_;
};

}  // namespace

std::optional<RunArguments> parse_run_arguments(int argc, char** argv) { return RunParser(argc, argv).parse(); }

}  // namespace pidlock::cli
