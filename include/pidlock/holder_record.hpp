/// \file
/// The record a lock file holds, and its text format.
///
/// A pidlock lock file is a few lines of text; the first three are
/// PostgreSQL's postmaster.pid layout, so tools written for that file work:
///
/// \verbatim
///   4242                          line 1: the holder's pid, alone
///   /srv/db                       line 2: the data directory (absolute)
///   1795752900                    line 3: the holder's start time, epoch s
///   pidlock-format=1              line 4: marks a pidlock record, version 1
///   process-start-ticks=81234     the holder's start, clock ticks since boot
///   boot-id=3a94070e-...          /proc/sys/kernel/random/boot_id
///   pid-namespace=4026531836      inode of the holder's pid namespace
///   host=db1                      gethostname()
///   status=ready                  a short status word
///   checksum=crc32:1a2b3c4d       CRC-32 of every byte before this line
/// \endverbatim
///
/// Named fields are "key=value"; a reader ignores keys it does not know, so a
/// newer writer can add fields without breaking an older reader. The checksum
/// line comes last; a record whose checksum does not match was read while it
/// was being rewritten, and the reader reads it again. When an update makes
/// the record shorter, a "pad=" field keeps the file's length unchanged so
/// that the file is never truncated in place.
///
/// PostgreSQL's own files are read too (format kPostgresql): postmaster.pid
/// (8 lines: pid, data directory, start time, port, socket directory, listen
/// address, shared-memory key, status) and socket lock files (5 lines). A
/// negative pid on line 1 is PostgreSQL's single-user backend.
///
/// Thread safety: free functions, no shared state.
#ifndef PIDLOCK_HOLDER_RECORD_HPP
#define PIDLOCK_HOLDER_RECORD_HPP

#include <pidlock/export.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace pidlock {

/// Which writer's layout a lock file's bytes follow.
enum class RecordFormat {
  kNone,        ///< no record could be parsed (empty, garbage, torn)
  kPidlock,     ///< written by pidlock
  kPostgresql,  ///< a PostgreSQL postmaster.pid or socket .lock file
  kPlainPid,    ///< a classic pidfile: one line, the pid alone
};

/// The record format version this library writes.
inline constexpr unsigned kRecordFormatVersion = 1;

/// Longest status word accepted by LockHandle::update_status() and AcquireOptions::status.
inline constexpr std::size_t kMaxStatusLength = 32;

/// The status word of a lock that its holder released while others were
/// waiting for it: the file stays, unlocked, for one of them to take over
/// in place (see docs/how-it-works.md). Reserved: update_status() and
/// AcquireOptions::status refuse it.
inline constexpr std::string_view kReleasedStatus = "released";

/// Lock files longer than this are not read past this size: a huge file
/// costs one bounded read, and is never taken for a stale lock.
inline constexpr std::size_t kMaxRecordBytes = 4096;

/// The parsed contents of a lock file: who holds (or held) it.
struct HolderRecord {
  RecordFormat format = RecordFormat::kNone;  ///< which layout the bytes followed
  pid_t pid = 0;                  ///< line 1
  bool single_user = false;       ///< PostgreSQL: line 1 was negative
  std::string data_directory;     ///< line 2
  std::int64_t start_time = 0;    ///< line 3, epoch seconds

  // pidlock fields (format kPidlock). Absent values stay empty.
  unsigned format_version = 0;                       ///< pidlock-format=
  std::optional<std::uint64_t> process_start_ticks;  ///< process-start-ticks=: the holder's start, ticks since boot
  std::string boot_id;                               ///< boot-id=: the boot the holder ran in
  std::optional<std::uint64_t> pid_namespace;        ///< pid-namespace=: inode of the holder's pid namespace
  std::string host;                                  ///< host=: gethostname() of the holder
  std::string status;  ///< status=, or line 8 of a PostgreSQL file ("starting", "ready", ...)
  /// The holder could not take the file's kernel lock ("kernel-lock=none"):
  /// a free kernel lock then proves nothing, and the pid rules judge it.
  bool without_kernel_lock = false;

  // PostgreSQL fields (format kPostgresql), lines 4-7; status is line 8.
  std::optional<int> port;           ///< line 4: the port
  std::string socket_directory;      ///< line 5: the Unix socket directory
  std::string listen_address;        ///< line 6: the listen address
  std::string shared_memory_key;     ///< line 7: shared-memory key and id

  /// Named fields this version does not know, kept for display.
  std::map<std::string, std::string> unknown_fields;
};

/// Result of parsing a lock file's bytes.
struct ParsedRecord {
  std::optional<HolderRecord> record;  ///< set when the bytes parsed
  bool empty = false;                  ///< the file had no bytes at all
  bool torn = false;                   ///< pidlock record, checksum mismatch
  /// The bytes cannot be a lock record of any writer (longer than
  /// kMaxRecordBytes): the file is judged unknown, never stale, since it may
  /// be somebody's data at a mistyped lock path. (NUL bytes are no proof: a
  /// record written without fsync can come back as zeros after power loss.)
  bool implausible = false;
  std::string problem;                 ///< why it did not parse
};

/// Parses the bytes of a lock file. Never throws on any input; work and
/// memory are bounded by kMaxRecordBytes.
PIDLOCK_EXPORT ParsedRecord parse_record(std::string_view bytes) noexcept;

/// Serialises a pidlock record (format kPidlock) with its checksum line. If
/// `min_size` exceeds the natural length, a pad= field makes the result at
/// least min_size bytes long, so that rewriting a file in place never leaves
/// old bytes after the new record's end.
PIDLOCK_EXPORT std::string format_record(const HolderRecord& record,
                                         std::size_t min_size = 0);

/// "pidlock", "postgresql", "pidfile" or "none".
PIDLOCK_EXPORT const char* to_string(RecordFormat format) noexcept;

}  // namespace pidlock

#endif  // PIDLOCK_HOLDER_RECORD_HPP
