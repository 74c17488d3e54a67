#include "core/foreign_record.hpp"

#include "core/parse_integer.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pidlock::detail {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The lines of `bytes`, each without its '\n' (and a '\r' before it). A
// last line without '\n' counts; the empty piece after a final '\n' does
// not.
std::vector<std::string_view> lines_of(std::string_view bytes) {
  std::vector<std::string_view> lines;
  while (!bytes.empty()) {
    const size_t nl = bytes.find('\n');
    std::string_view line = bytes.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    bytes.remove_prefix(nl + 1);
  }
  return lines;
}

bool blank(std::string_view line) { return trim(line).empty(); }

void drop_trailing_blank_lines(std::vector<std::string_view>* lines, size_t keep_at_least) {
  while (lines->size() > keep_at_least && blank(lines->back())) lines->pop_back();
}

// No control characters but tabs (a path may hold one); UTF-8 is fine.
bool printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 && u != 0x7f) || c == '\t';
  });
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Line 1 of a pid file: a number a pid can be on Linux, optionally
// negative (PostgreSQL's single-user backend; a process group), padded
// with spaces on either side (`%10d` puts them in front).
struct PidLine {
  pid_t pid = 0;
  bool negative = false;
};

std::optional<PidLine> pid_line(std::string_view line) {
  std::string_view text = trim(line);
  PidLine out;
  if (!text.empty() && text.front() == '-') {
    out.negative = true;
    text.remove_prefix(1);
  }
  // Ten digits at most: enough for any pid (and any zero-padding of one),
  // too few for the numbers that are not pids anyway.
  if (!all_digits(text) || text.size() > 10) return std::nullopt;
  const auto value = parse_integer<long long>(text);
  if (!value || *value > kLargestLinuxPid) return std::nullopt;
  out.pid = static_cast<pid_t>(*value);
  out.negative = out.negative && out.pid != 0;
  return out;
}

// A host name as gethostname() gives it: printable, no spaces or slashes.
bool host_like(std::string_view s) {
  return !s.empty() && s.size() <= 253 && printable(s) && s.find_first_of(" /\t") == std::string_view::npos;
}

// Line 2 of a plain pid file: a host or a program name (argv[0], comm),
// one word: a line of prose is no label.
bool label_like(std::string_view s) {
  return !s.empty() && s.size() <= 255 && printable(s) && !all_digits(s) && s.find_first_of(" \t") == std::string_view::npos;
}

ParsedRecord parsed(HolderRecord record) {
  ParsedRecord r;
  r.record = std::move(record);
  return r;
}

ParsedRecord unrecognised(std::string_view bytes, std::string why) {
  ParsedRecord r;
  r.implausible = true;
  r.problem = describe_content(bytes) + ": " + std::move(why);
  return r;
}

// Line 7 of postmaster.pid: "key id", two integers apart (PostgreSQL pads
// them to fixed widths).
std::optional<SharedMemorySegment> shared_memory_segment(std::string_view line) {
  const size_t space = line.find_first_of(" \t");
  if (space == std::string_view::npos) return std::nullopt;
  const auto key = parse_integer<std::int64_t>(line.substr(0, space));
  const auto id = parse_integer<int>(trim(line.substr(space)));
  if (!key || !id) return std::nullopt;
  return SharedMemorySegment{*key, *id};
}

// postmaster.pid and socket lock files (PostgreSQL's CreateLockFile and
// AddToDataDirLockFile): five lines at creation -- pid, data directory,
// start time, port, socket directory (empty for postmaster.pid until the
// sockets exist) -- then listen address, shared-memory key and id, status.
std::optional<ParsedRecord> postgresql(std::vector<std::string_view> lines) {
  drop_trailing_blank_lines(&lines, 5);
  if (lines.size() < 5 || lines.size() > 8) return std::nullopt;
  const std::optional<PidLine> pid = pid_line(lines[0]);
  const std::string_view dir = trim(lines[1]);
  const auto start = parse_integer<std::int64_t>(trim(lines[2]));
  const auto port = parse_integer<int>(trim(lines[3]));
  if (!pid || dir.empty() || dir.front() != '/' || !printable(dir) || !start || *start < 0 || !port ||
      *port < 1 || *port > 65535)
    return std::nullopt;
  for (size_t i = 4; i < lines.size(); ++i)
    if (!printable(lines[i])) return std::nullopt;
  HolderRecord rec;
  rec.format = RecordFormat::kPostgresql;
  rec.pid = pid->pid;
  rec.single_user = pid->negative;
  rec.data_directory = std::string(dir);
  rec.start_time = *start;
  rec.port = *port;
  rec.socket_directory = std::string(trim(lines[4]));
  if (lines.size() >= 6) rec.listen_address = std::string(trim(lines[5]));
  if (lines.size() >= 7) {
    rec.shared_memory_key = std::string(trim(lines[6]));
    rec.shared_memory = shared_memory_segment(rec.shared_memory_key);
  }
  if (lines.size() >= 8) rec.status = std::string(trim(lines[7]));
  return parsed(std::move(rec));
}

// Python filelock's soft-lock marker, protocol 2 ("filelock/2", then
// key=value lines; pid and host required, start= the start token).
std::optional<ParsedRecord> filelock_v2(const std::vector<std::string_view>& lines) {
  if (lines.empty() || trim(lines[0]) != "filelock/2") return std::nullopt;
  HolderRecord rec;
  rec.format = RecordFormat::kFilelock;
  bool have_pid = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = trim(lines[i]);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || !printable(line)) return std::nullopt;
    const std::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "pid") {
      const auto pid = parse_integer<pid_t>(value);
      if (!pid || *pid <= 0 || *pid > kLargestLinuxPid) return std::nullopt;
      rec.pid = *pid;
      have_pid = true;
    } else if (key == "host") {
      rec.host = std::string(value);
    } else if (key == "start") {
      rec.process_start_ticks = parse_integer<std::uint64_t>(value);
      if (!rec.process_start_ticks) return std::nullopt;
    } else if (rec.unknown_fields.size() < 16) {
      rec.unknown_fields.emplace(std::string(key), std::string(value));
    }
  }
  if (!have_pid || !host_like(rec.host)) return std::nullopt;
  return parsed(std::move(rec));
}

// Plain pid files and filelock's protocol 1 marker: the pid, then
// nothing, a host or program line, or (filelock) host and start token.
std::optional<ParsedRecord> plain(std::vector<std::string_view> lines) {
  drop_trailing_blank_lines(&lines, 1);
  const std::optional<PidLine> pid = pid_line(lines[0]);
  if (!pid) return std::nullopt;
  HolderRecord rec;
  rec.format = RecordFormat::kPlainPid;
  rec.pid = pid->pid;
  rec.single_user = pid->negative;
  if (lines.size() == 1) return parsed(std::move(rec));
  const std::string_view second = trim(lines[1]);
  if (pid->negative || pid->pid == 0) return std::nullopt;
  if (lines.size() == 2 && label_like(second)) {
    rec.label = std::string(second);
    return parsed(std::move(rec));
  }
  if (lines.size() == 3 && host_like(second) && all_digits(trim(lines[2]))) {
    const std::string_view third = trim(lines[2]);
    rec.format = RecordFormat::kFilelock;
    rec.host = std::string(second);
    rec.process_start_ticks = parse_integer<std::uint64_t>(third);
    if (rec.process_start_ticks) return parsed(std::move(rec));
  }
  return std::nullopt;
}

}  // namespace

std::string describe_content(std::string_view bytes) {
  const size_t size = bytes.size();
  if (std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }))
    return "whitespace only (" + std::to_string(size) + " bytes)";
  const bool binary = std::any_of(bytes.begin(), bytes.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\n' && c != '\r' && c != '\t') || u == 0x7f;
  });
  if (binary) return "binary data (" + std::to_string(size) + " bytes)";
  const std::vector<std::string_view> lines = lines_of(bytes);
  std::string first(trim(lines.front()).substr(0, 40));
  const size_t n = lines.size();
  return std::to_string(n) + (n == 1 ? " line" : " lines") + " of text, the first \"" + first +
         (trim(lines.front()).size() > 40 ? "...\"" : "\"");
}

ParsedRecord parse_foreign_record(std::string_view bytes) {
  const std::vector<std::string_view> lines = lines_of(bytes);
  if (lines.empty() || std::all_of(lines.begin(), lines.end(), blank))
    return unrecognised(bytes, "no line holds a pid");
  if (std::optional<ParsedRecord> r = filelock_v2(lines)) return *r;
  if (!pid_line(lines[0])) {
    std::string_view first = trim(lines[0]);
    if (!first.empty() && first.front() == '-') first.remove_prefix(1);
    return unrecognised(bytes, all_digits(first) ? "line 1 is a number no process can have on Linux"
                                                 : "line 1 is not a pid");
  }
  if (std::optional<ParsedRecord> r = postgresql(lines)) return *r;
  if (std::optional<ParsedRecord> r = plain(lines)) return *r;
  return unrecognised(bytes, "a pid on line 1, but the other lines follow no layout pidlock knows");
}

}  // namespace pidlock::detail
