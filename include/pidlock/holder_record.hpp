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
/// An application may keep up to kMaxApplicationLines lines of its own
/// between line 3 and the format line (LockHandle::set_line), so that a
/// program that embeds pidlock keeps its file's layout: PostgreSQL's
/// lines 4 to 8 (port, socket directory, listen address, shared-memory key,
/// status) stay where pg_ctl reads them, and "pidlock-format=1" follows as
/// line 9.
///
/// Named fields are "key=value"; a reader ignores keys it does not know, so a
/// newer writer can add fields without breaking an older reader. The checksum
/// line comes last; a record whose checksum does not match was read while it
/// was being rewritten, and the reader reads it again. When an update makes
/// the record shorter, a "pad=" field keeps the file's length unchanged so
/// that the file is never truncated in place.
///
/// Other writers' lock files are read too, and only the layouts listed here
/// are lock records (docs/guide.md, "Recognised layouts"); parse_record()
/// marks everything else `implausible`, and such a file is judged unknown
/// and never taken over or removed, whatever its size:
///
///  - PostgreSQL (format kPostgresql): postmaster.pid (5 to 8 lines: pid,
///    data directory, start time, port, socket directory, listen address,
///    shared-memory key and id, status) and socket lock files such as
///    /tmp/.s.PGSQL.5432.lock (5 lines). A negative pid on line 1 is
///    PostgreSQL's single-user backend.
///  - Plain pid files (format kPlainPid): the pid alone on line 1, with or
///    without a newline, padded with leading spaces (`%10d\\n`: X11's
///    /tmp/.X0-lock, UUCP LCK.. files), followed by blank lines, or by one
///    line naming a host or a program (kept in `label`).
///  - Python filelock's soft-lock marker (format kFilelock): "pid\\nhost\\n"
///    with an optional third line, the holder's start in clock ticks since
///    boot (/proc/PID/stat field 22), and its "filelock/2" key=value form.
///    (Debian 12's python3-filelock 3.9.0 writes nothing: an empty file.)
///  - An empty file, and a file of NUL bytes only (a record whose data a
///    power failure lost while its length survived).
///
/// Line 1 of a pid file is a number a pid can be on Linux: at most
/// 4194304 (PID_MAX_LIMIT), optionally negative. 0 and values above this
/// machine's pid_max parse (the judge calls them impossible holders);
/// larger numbers are not a pid file at all.
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
#include <vector>
#include <sys/types.h>

namespace pidlock {

/// Which writer's layout a lock file's bytes follow.
enum class RecordFormat {
  kNone,        ///< no record could be parsed (empty, garbage, torn)
  kPidlock,     ///< written by pidlock
  kPostgresql,  ///< a PostgreSQL postmaster.pid or socket .lock file
  kPlainPid,    ///< a classic pidfile: the pid alone, maybe with a host or program line
  kFilelock,    ///< Python filelock's soft-lock marker: pid, host, start token
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

/// Most lines an application may keep after line 3 (PostgreSQL's lines 4-8).
inline constexpr std::size_t kMaxApplicationLines = 5;

/// Longest application line: with all of them at this length the record
/// stays well below kMaxRecordBytes.
inline constexpr std::size_t kMaxApplicationLineLength = 512;

/// Lock files longer than this are not read past this size: a huge file
/// costs one bounded read, and is never taken for a stale lock.
inline constexpr std::size_t kMaxRecordBytes = 4096;

/// A System V shared-memory segment named by a PostgreSQL lock file (line
/// 7): the server checks, before removing a stale postmaster.pid, that no
/// process is still attached to it.
struct SharedMemorySegment {
  std::int64_t key = 0;  ///< the key it was created with (PostgreSQL: port * 1000 + n)
  int id = 0;            ///< its id, as `ipcs -m` shows it
  bool operator==(const SharedMemorySegment& o) const noexcept { return key == o.key && id == o.id; }
};

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
  /// Line 7 as written ("   5432001    131074"): the shared-memory key
  /// and id, as text; see shared_memory for the two numbers.
  std::string shared_memory_key;
  /// Line 7 parsed: the server's System V shared-memory segment. Absent when
  /// the line is missing, empty, or not two integers.
  std::optional<SharedMemorySegment> shared_memory;

  /// Plain pid file: line 2, which names a host or a program; the judge
  /// decides which (see docs/guide.md).
  std::string label;

  /// pidlock records: the application's own lines 4, 5, ... (see
  /// LockHandle::set_line), verbatim, without their newlines.
  /// format_record() writes them as they are; set_application_line() is
  /// the checked way to change them.
  std::vector<std::string> application_lines;

  /// Named fields this version does not know, kept for display.
  std::map<std::string, std::string> unknown_fields;
};

/// Result of parsing a lock file's bytes.
struct ParsedRecord {
  std::optional<HolderRecord> record;  ///< set when the bytes parsed
  bool empty = false;                  ///< the file had no bytes at all
  bool torn = false;                   ///< pidlock record, checksum mismatch
  /// The bytes are not a lock record of any layout pidlock recognises
  /// (text, binary data, whitespace only, a number no pid can be, longer
  /// than kMaxRecordBytes, ...): the file is judged unknown, never stale,
  /// since it may be somebody's data at a mistyped lock path. `problem`
  /// says what was found.
  bool implausible = false;
  std::string problem;                 ///< why it did not parse
  /// The file holds only NUL bytes: a record whose data a power failure
  /// lost. Judged like an empty file.
  bool zeroed = false;
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

/// Sets application line `line` (4 to 3 + kMaxApplicationLines) of
/// `record` to `text`, adding empty lines before it where missing. Returns
/// false, leaving the record unchanged, when the line number is out of
/// range or the text cannot be a line of a record: longer than
/// kMaxApplicationLineLength, holding a newline or NUL, or starting like
/// one of pidlock's own lines ("pidlock-format=", "checksum=crc32:").
PIDLOCK_EXPORT bool set_application_line(HolderRecord& record, std::size_t line,
                                         std::string_view text);

/// "pidlock", "postgresql", "pidfile", "filelock" or "none".
PIDLOCK_EXPORT const char* to_string(RecordFormat format) noexcept;

}  // namespace pidlock

#endif  // PIDLOCK_HOLDER_RECORD_HPP
