#include <pidlock/holder_record.hpp>

#include "core/crc32.hpp"
#include "core/foreign_record.hpp"
#include "core/parse_integer.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

namespace pidlock {
namespace {

using detail::parse_integer;

constexpr std::string_view kFormatKey = "pidlock-format";
constexpr std::string_view kChecksumPrefix = "checksum=crc32:";

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits into lines; a final line without '\n' is kept (and flagged).
std::vector<std::string_view> split_lines(std::string_view bytes, bool* ends_with_newline) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < bytes.size()) {
    size_t nl = bytes.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.push_back(bytes.substr(start));
      *ends_with_newline = false;
      return lines;
    }
    lines.push_back(bytes.substr(start, nl - start));
    start = nl + 1;
  }
  *ends_with_newline = true;
  return lines;
}

// Why the checksum line of a pidlock record does not vouch for the bytes
// before it, or nothing if it does. The checksum line is the last line.
std::optional<std::string> checksum_problem(std::string_view bytes) {
  if (bytes.empty() || bytes.back() != '\n') return "no checksum line (truncated record)";
  size_t line_start = bytes.rfind('\n', bytes.size() - 2);
  line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
  std::string_view line = bytes.substr(line_start, bytes.size() - 1 - line_start);
  if (line.substr(0, kChecksumPrefix.size()) != kChecksumPrefix) return "no checksum line (truncated record)";
  std::string_view hex = line.substr(kChecksumPrefix.size());
  std::uint32_t stored = 0;
  auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), stored, 16);
  if (ec != std::errc() || end != hex.data() + hex.size() || hex.size() != 8) return "malformed checksum line";
  if (detail::crc32(bytes.substr(0, line_start)) != stored)
    return "checksum mismatch (record read while being rewritten, or damaged)";
  return std::nullopt;
}

// The index of a line that marks a pidlock record ("pidlock-format="),
// among the first lines after PostgreSQL's three and the application's
// lines, or npos.
size_t pidlock_marker_line(const std::vector<std::string_view>& lines) {
  for (size_t i = 3; i < lines.size() && i <= 3 + kMaxApplicationLines; ++i)
    if (lines[i].substr(0, kFormatKey.size() + 1) == "pidlock-format=") return i;
  return std::string_view::npos;
}

// Does the first line hold digits alone (a pid, or the digits of two pids
// mixed by a torn read)?
bool digits_first_line(std::string_view bytes) {
  std::string_view first = trim_right(bytes.substr(0, bytes.find('\n')));
  return !first.empty() && first.find_first_not_of("0123456789") == std::string_view::npos;
}

ParsedRecord failure(std::string problem, bool torn = false) {
  ParsedRecord r;
  r.problem = std::move(problem);
  r.torn = torn;
  return r;
}

// The fields of a pidlock record whose checksum parse_record() has already
// verified (checksum_problem: the last line is a well-formed checksum of
// everything before it), so it is not computed a second time here.
// Lines 4 up to the format line (`marker`) are the application's own.
ParsedRecord parse_pidlock_fields(const std::vector<std::string_view>& lines, size_t marker,
                                  HolderRecord record) {
  for (size_t i = 3; i < marker; ++i) record.application_lines.emplace_back(lines[i]);
  for (size_t i = marker; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.substr(0, kChecksumPrefix.size()) == kChecksumPrefix) {
      if (i + 1 != lines.size()) return failure("checksum line is not the last line", true);
      return ParsedRecord{std::move(record), false, false, false, {}};
    }
    auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) return failure("malformed field line " + std::to_string(i + 1));
    std::string_view key = line.substr(0, eq);
    std::string_view value = line.substr(eq + 1);
    if (key == kFormatKey) {
      auto v = parse_integer<unsigned>(value);
      if (!v || *v == 0) return failure("malformed format version");
      record.format_version = *v;
    } else if (key == "process-start-ticks") {
      record.process_start_ticks = parse_integer<std::uint64_t>(value);
      if (!record.process_start_ticks) return failure("malformed process-start-ticks");
    } else if (key == "boot-id") {
      record.boot_id = std::string(value);
    } else if (key == "pid-namespace") {
      record.pid_namespace = parse_integer<std::uint64_t>(value);
      if (!record.pid_namespace) return failure("malformed pid-namespace");
    } else if (key == "host") {
      record.host = std::string(value);
    } else if (key == "status") {
      record.status = std::string(value);
    } else if (key == "kernel-lock") {
      record.without_kernel_lock = value == "none";
    } else if (key == "pad") {
      // Filler that keeps the file from shrinking; carries nothing.
    } else if (record.unknown_fields.size() < 64) {
      record.unknown_fields.emplace(std::string(key), std::string(value));
    }
  }
  return failure("no checksum line (truncated record)", true);
}

}  // namespace

ParsedRecord parse_record(std::string_view bytes) noexcept try {
  if (bytes.empty()) {
    ParsedRecord r = failure("the file is empty");
    r.empty = true;
    return r;
  }
  if (bytes.size() > kMaxRecordBytes) {
    ParsedRecord r = failure("the file is larger than " + std::to_string(kMaxRecordBytes) + " bytes");
    r.implausible = true;
    return r;
  }
  if (bytes.find('\0') != std::string_view::npos) {
    // A power loss can bring back a record written without fsync as zeros
    // of the right length (a record fits one block: all of it or none).
    // Zeros mixed with other bytes are no lock record's remnant.
    if (bytes.find_first_not_of('\0') == std::string_view::npos) {
      ParsedRecord r = failure("the file holds only NUL bytes (" + std::to_string(bytes.size()) + ")");
      r.zeroed = true;
      return r;
    }
    ParsedRecord r = failure(detail::describe_content(bytes));
    r.implausible = true;
    return r;
  }

  // A pidlock record is rewritten in place, so a reader may catch a mix of
  // two versions, in which any line, even the pid, can look malformed. The
  // checksum decides first: a pidlock record whose checksum does not hold
  // is torn (read it again), never "garbage". Only a file that starts like
  // a pidlock record (digits, and the format line) can be one.
  if (bytes.find("\npidlock-format=") != std::string_view::npos && digits_first_line(bytes)) {
    if (std::optional<std::string> problem = checksum_problem(bytes)) return failure(*problem, true);
  }

  bool ends_with_newline = true;
  std::vector<std::string_view> lines = split_lines(bytes, &ends_with_newline);
  const size_t marker = pidlock_marker_line(lines);
  if (marker == std::string_view::npos || !digits_first_line(bytes)) {
    // Not pidlock's: another writer's layout, or no lock record at all.
    return detail::parse_foreign_record(bytes);
  }

  // A pidlock record; whatever fails to parse from here on makes it a
  // damaged one (judged by its kernel lock), not a foreign file.
  HolderRecord record;
  std::string_view pid_text = trim_right(lines[0]);
  auto pid = parse_integer<long long>(pid_text);
  if (!pid || *pid == 0 || *pid > std::numeric_limits<pid_t>::max())
    return failure("line 1 is not a possible pid: \"" + std::string(pid_text.substr(0, 40)) + "\"");
  record.pid = static_cast<pid_t>(*pid);
  record.data_directory = std::string(trim_right(lines[1]));
  auto start = parse_integer<std::int64_t>(trim_right(lines[2]), true);
  if (!start) return failure("line 3 is not a start time");
  record.start_time = *start;
  record.format = RecordFormat::kPidlock;
  return parse_pidlock_fields(lines, marker, std::move(record));
} catch (...) {
  // Only std::bad_alloc can get here; a record we cannot hold is garbage.
  return failure("out of memory while parsing");
}

namespace {

// Writes a record into a buffer sized in advance: format_record runs on
// every acquire, and its streams, temporaries and growing appends once cost
// more user-space time than the acquire's system calls.
class RecordWriter {
 public:
  explicit RecordWriter(char* at) : at_(at) {}
  char* end() const { return at_; }

  void text(std::string_view s) {
    std::memcpy(at_, s.data(), s.size());
    at_ += s.size();
  }
  void fill(char c, size_t n) {
    std::memset(at_, c, n);
    at_ += n;
  }
  template <typename Int>
  void number(std::string_view key, Int value) {
    text(key);
    at_ = std::to_chars(at_, at_ + kMaxDigits, value).ptr;
    *at_++ = '\n';
  }
  void field(std::string_view key, std::string_view value) {
    text(key);
    text(value);
    *at_++ = '\n';
  }

  static constexpr size_t kMaxDigits = 24;

 private:
  char* at_;
};

constexpr size_t kChecksumLine = kChecksumPrefix.size() + 8 + 1;

// The most bytes format_record() writes for `record` before its padding
// and checksum line: the keys and digits of every field, with room to spare.
size_t unpadded_bound(const HolderRecord& record) {
  size_t n = 256 + record.data_directory.size() + record.boot_id.size() + record.host.size() + record.status.size();
  for (const std::string& line : record.application_lines) n += line.size() + 1;
  return n;
}

// The fields format_record() writes: equal fields, equal bytes.
bool same_written_fields(const HolderRecord& a, const HolderRecord& b) {
  return a.pid == b.pid && a.start_time == b.start_time && a.process_start_ticks == b.process_start_ticks &&
         a.pid_namespace == b.pid_namespace && a.without_kernel_lock == b.without_kernel_lock &&
         a.data_directory == b.data_directory && a.boot_id == b.boot_id && a.host == b.host &&
         a.status == b.status && a.application_lines == b.application_lines;
}

std::string format_fresh(const HolderRecord& record, std::size_t min_size);

// The record this thread formatted last. A process acquiring in a loop
// writes the same record every time (its own pid, start and identity), so
// comparing the fields costs a fraction of formatting and checksumming
// them again.
struct LastFormatted {
  HolderRecord record;
  std::size_t min_size = 0;
  std::string bytes;
};

// This thread's LastFormatted, or null once the thread's objects are being
// destroyed: a lock released by a static destructor at exit formats its
// record after them, so the cache is reached through pointers that stay
// valid (trivially destructible) and is never used again once freed.
LastFormatted* last_formatted() {
  thread_local LastFormatted* last = nullptr;
  thread_local bool gone = false;
  if (gone) return nullptr;
  if (last == nullptr) {
    struct Owner {
      ~Owner() {
        delete last;
        last = nullptr;
        gone = true;
      }
    };
    thread_local Owner owner;
    (void)owner;
    last = new LastFormatted;
  }
  return last;
}

}  // namespace

std::string format_record(const HolderRecord& record, std::size_t min_size) {
  LastFormatted* last = last_formatted();
  if (last == nullptr) return format_fresh(record, min_size);
  if (!last->bytes.empty() && last->min_size == min_size && same_written_fields(last->record, record))
    return last->bytes;
  std::string out = format_fresh(record, min_size);
  last->record = record;
  last->min_size = min_size;
  last->bytes = out;
  return out;
}

namespace {

std::string format_fresh(const HolderRecord& record, std::size_t min_size) {
  std::string out;
  // Room for the fields, a pad line (at least 5 bytes) and the checksum.
  out.resize(unpadded_bound(record) + min_size + 5 + kChecksumLine);
  RecordWriter w(out.data());
  w.number("", record.pid);
  w.field("", record.data_directory);
  w.number("", record.start_time);
  for (const std::string& line : record.application_lines) w.field("", line);
  w.number("pidlock-format=", kRecordFormatVersion);
  if (record.process_start_ticks) w.number("process-start-ticks=", *record.process_start_ticks);
  if (!record.boot_id.empty()) w.field("boot-id=", record.boot_id);
  if (record.pid_namespace) w.number("pid-namespace=", *record.pid_namespace);
  if (!record.host.empty()) w.field("host=", record.host);
  w.field("status=", record.status);
  if (record.without_kernel_lock) w.text("kernel-lock=none\n");
  size_t natural = static_cast<size_t>(w.end() - out.data()) + kChecksumLine;
  if (min_size > natural) {
    // "pad=" + spaces + "\n" is at least 5 bytes; a record may grow, never
    // shrink, so rounding up is fine.
    size_t pad = min_size - natural;
    w.text("pad=");
    w.fill(' ', pad > 5 ? pad - 5 : 0);
    w.text("\n");
  }
  const size_t body = static_cast<size_t>(w.end() - out.data());
  const std::uint32_t crc = detail::crc32(std::string_view(out.data(), body));
  // Eight hex digits, zero-padded.
  static constexpr char kHex[] = "0123456789abcdef";
  char checksum[8];
  for (int i = 0; i < 8; ++i) checksum[i] = kHex[(crc >> (28 - 4 * i)) & 0xf];
  w.field(kChecksumPrefix, std::string_view(checksum, sizeof checksum));
  out.resize(static_cast<size_t>(w.end() - out.data()));
  return out;
}

}  // namespace

bool set_application_line(HolderRecord& record, std::size_t line, std::string_view text) {
  if (line < 4 || line > 3 + kMaxApplicationLines || text.size() > kMaxApplicationLineLength) return false;
  if (text.find_first_of(std::string_view("\n\0", 2)) != std::string_view::npos) return false;
  if (text.substr(0, kFormatKey.size() + 1) == "pidlock-format=" ||
      text.substr(0, kChecksumPrefix.size()) == kChecksumPrefix)
    return false;
  const size_t index = line - 4;
  if (record.application_lines.size() <= index) record.application_lines.resize(index + 1);
  record.application_lines[index] = std::string(text);
  return true;
}

const char* to_string(RecordFormat format) noexcept {
  switch (format) {
    case RecordFormat::kPidlock: return "pidlock";
    case RecordFormat::kPostgresql: return "postgresql";
    case RecordFormat::kPlainPid: return "pidfile";
    case RecordFormat::kFilelock: return "filelock";
    case RecordFormat::kNone: break;
  }
  return "none";
}

}  // namespace pidlock
