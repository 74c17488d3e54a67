// libFuzzer target: parse_record() over arbitrary bytes (guarantee G7: never
// a crash, a hang or unbounded work on any file), and the format_record()
// round trip of every pidlock record that parsed.
//
// Properties checked (a violation aborts, which libFuzzer reports):
//  * parse_record never throws (it is noexcept; a throw would terminate);
//  * empty input, and only empty input, is reported as `empty`;
//  * a parsed pidlock record has a pid in 1..INT_MAX, any other record one
//    in 0..4194304 (a pid Linux can give, or 0: an impossible holder);
//    `torn` and `implausible` never come with a record; `zeroed` only for
//    NUL bytes alone;
//  * a pidlock record survives format_record -> parse_record unchanged in
//    every field format_record writes, with and without padding to a
//    larger size, and the padded text is at least that size;
//  * line 1 of what format_record writes is the pid alone (G6).
#include <pidlock/holder_record.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "record_parser_fuzz: property violated: %s\n", what);
    std::abort();
  }
}

void expect_same(const pidlock::HolderRecord& a, const pidlock::HolderRecord& b) {
  check(b.format == pidlock::RecordFormat::kPidlock, "round trip: format");
  check(a.pid == b.pid, "round trip: pid");
  check(a.data_directory == b.data_directory, "round trip: data directory");
  check(a.start_time == b.start_time, "round trip: start time");
  check(a.process_start_ticks == b.process_start_ticks, "round trip: process-start-ticks");
  check(a.boot_id == b.boot_id, "round trip: boot-id");
  check(a.pid_namespace == b.pid_namespace, "round trip: pid-namespace");
  check(a.host == b.host, "round trip: host");
  check(a.status == b.status, "round trip: status");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  pidlock::ParsedRecord parsed = pidlock::parse_record(bytes);

  check(parsed.empty == (size == 0), "empty flag");
  if (parsed.zeroed) check(size > 0 && bytes.find_first_not_of('\0') == std::string_view::npos, "zeroed flag");
  if (parsed.record) {
    check(!parsed.torn, "a torn parse carries a record");
    check(!parsed.implausible, "an implausible parse carries a record");
    if (parsed.record->format == pidlock::RecordFormat::kPidlock)
      check(parsed.record->pid > 0, "pid must be positive");
    else
      check(parsed.record->pid >= 0 && parsed.record->pid <= 4194304, "pid must be one Linux can give, or 0");
  } else {
    check(!parsed.problem.empty(), "a failed parse says why");
  }
  if (!parsed.record || parsed.record->format != pidlock::RecordFormat::kPidlock) return 0;

  const pidlock::HolderRecord& rec = *parsed.record;
  // What parsed from a file must be writable and read back the same. The
  // writer trusts its caller for these (they come from the library, which
  // never writes a newline into a field); a field read from a file cannot
  // hold one either, since the parser splits on it.
  std::string text = pidlock::format_record(rec);
  std::string line1 = std::to_string(rec.pid) + "\n";
  check(text.compare(0, line1.size(), line1) == 0, "line 1 is the pid alone");
  pidlock::ParsedRecord again = pidlock::parse_record(text);
  if (text.size() <= pidlock::kMaxRecordBytes) {
    check(again.record.has_value(), "format_record output does not parse");
    expect_same(rec, *again.record);
  }

  // Padded to a larger size, as update_status does to never shrink a file.
  std::size_t min_size = text.size() + 1 + (size % 97);
  std::string padded = pidlock::format_record(rec, min_size);
  check(padded.size() >= min_size, "padding reaches min_size");
  pidlock::ParsedRecord padded_again = pidlock::parse_record(padded);
  if (padded.size() <= pidlock::kMaxRecordBytes) {
    check(padded_again.record.has_value(), "padded format_record output does not parse");
    expect_same(rec, *padded_again.record);
  }
  return 0;
}
