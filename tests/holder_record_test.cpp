// Rule 21: the record parser and writer (holder_record.hpp), and the judge's
// verdict on an impossible pid.
#include <pidlock/holder_record.hpp>

#include "support/test_support.hpp"
#include "core/crc32.hpp"
#include "core/judge.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using pidlock::format_record;
using pidlock::HolderRecord;
using pidlock::parse_record;
using pidlock::ParsedRecord;
using pidlock::RecordFormat;

HolderRecord sample_record() {
  HolderRecord r;
  r.format = RecordFormat::kPidlock;
  r.format_version = pidlock::kRecordFormatVersion;
  r.pid = 4242;
  r.data_directory = "/srv/db";
  r.start_time = 1795752900;
  r.process_start_ticks = 81234;
  r.boot_id = "3a94070e-1111-2222-3333-444455556666";
  r.pid_namespace = 4026531836u;
  r.host = "db1";
  r.status = "ready";
  return r;
}

// CRC-32 (IEEE, as zlib) one bit at a time, independently of the library.
std::uint32_t bitwise_crc32(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : bytes) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return crc ^ 0xFFFFFFFFu;
}

// Appends the checksum line for `body`, so that tests can build records
// with fields format_record cannot write.
std::string with_checksum(const std::string& body) {
  const std::uint32_t crc = bitwise_crc32(body);
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08x", crc);
  return body + "checksum=crc32:" + hex + "\n";
}

TEST(HolderRecord, RoundTripKeepsEveryField) {
  HolderRecord r = sample_record();
  std::string bytes = format_record(r);
  EXPECT_EQ(bytes.substr(0, 5), "4242\n") << "line 1 must be the pid alone";
  ParsedRecord parsed = parse_record(bytes);
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_FALSE(parsed.torn);
  const HolderRecord& p = *parsed.record;
  EXPECT_EQ(p.format, RecordFormat::kPidlock);
  EXPECT_EQ(p.format_version, 1u);
  EXPECT_EQ(p.pid, 4242);
  EXPECT_FALSE(p.single_user);
  EXPECT_EQ(p.data_directory, "/srv/db");
  EXPECT_EQ(p.start_time, 1795752900);
  EXPECT_EQ(p.process_start_ticks, std::optional<std::uint64_t>(81234));
  EXPECT_EQ(p.boot_id, r.boot_id);
  EXPECT_EQ(p.pid_namespace, r.pid_namespace);
  EXPECT_EQ(p.host, "db1");
  EXPECT_EQ(p.status, "ready");
  EXPECT_TRUE(p.unknown_fields.empty());
}

// PostgreSQL's lines 4-8 kept by an embedding server (the C API's
// pidlock_set_line): verbatim, before the format line, through a round trip.
TEST(HolderRecord, ApplicationLinesKeepPostgresqlsLayout) {
  HolderRecord r = sample_record();
  ASSERT_TRUE(pidlock::set_application_line(r, 4, "5432"));
  ASSERT_TRUE(pidlock::set_application_line(r, 8, "ready   "));
  EXPECT_EQ(r.application_lines, (std::vector<std::string>{"5432", "", "", "", "ready   "}));
  std::string bytes = format_record(r);
  EXPECT_NE(bytes.find("\n1795752900\n5432\n\n\n\nready   \npidlock-format=1\n"), std::string::npos) << bytes;
  ParsedRecord parsed = parse_record(bytes);
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->format, RecordFormat::kPidlock);
  EXPECT_EQ(parsed.record->application_lines, r.application_lines);
  EXPECT_EQ(parsed.record->status, "ready");
  EXPECT_EQ(parsed.record->pid, 4242);
}

TEST(HolderRecord, ApplicationLinesThatCannotBeLinesAreRefused) {
  HolderRecord r = sample_record();
  EXPECT_FALSE(pidlock::set_application_line(r, 3, "x"));
  EXPECT_FALSE(pidlock::set_application_line(r, 4 + pidlock::kMaxApplicationLines, "x"));
  EXPECT_FALSE(pidlock::set_application_line(r, 4, "two\nlines"));
  EXPECT_FALSE(pidlock::set_application_line(r, 4, std::string_view("nul\0", 4)));
  EXPECT_FALSE(pidlock::set_application_line(r, 4, "pidlock-format=2"));
  EXPECT_FALSE(pidlock::set_application_line(r, 4, "checksum=crc32:00000000"));
  EXPECT_FALSE(pidlock::set_application_line(r, 4, std::string(pidlock::kMaxApplicationLineLength + 1, 'x')));
  EXPECT_TRUE(r.application_lines.empty());
  // The longest lines allowed still make a record that parses.
  for (std::size_t line = 4; line < 4 + pidlock::kMaxApplicationLines; ++line)
    ASSERT_TRUE(pidlock::set_application_line(r, line, std::string(pidlock::kMaxApplicationLineLength, 'x')));
  r.data_directory = std::string(1024, 'd');
  ParsedRecord parsed = parse_record(format_record(r, 200));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->application_lines.size(), pidlock::kMaxApplicationLines);
}

TEST(HolderRecord, MinSizePadsWithoutChangingFields) {
  HolderRecord r = sample_record();
  std::string natural = format_record(r);
  std::string padded = format_record(r, natural.size() + 100);
  EXPECT_GE(padded.size(), natural.size() + 100);
  ParsedRecord parsed = parse_record(padded);
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->status, "ready");
  EXPECT_EQ(parsed.record->pid, 4242);
  EXPECT_TRUE(parsed.record->unknown_fields.empty()) << "pad= is filler, not an unknown field";
  // A min_size below the natural length changes nothing.
  EXPECT_EQ(format_record(r, 10), natural);
}

// The library's table-driven CRC must give every older reader's value: for
// every length around its 8-byte steps, and at every alignment.
TEST(HolderRecord, ChecksumIsTheBitwiseCrc32AtEveryLengthAndAlignment) {
  EXPECT_EQ(pidlock::detail::crc32("123456789"), 0xCBF43926u) << "the CRC-32 check value";
  EXPECT_EQ(pidlock::detail::crc32(""), 0u);
  std::string bytes;
  for (int i = 0; i < 300; ++i) bytes += static_cast<char>((i * 131 + 7) & 0xff);
  for (std::size_t offset = 0; offset < 8; ++offset)
    for (std::size_t length = 0; offset + length <= 80; ++length) {
      const std::string slice = bytes.substr(offset, length);
      ASSERT_EQ(pidlock::detail::crc32(slice), bitwise_crc32(slice)) << "offset " << offset << ", length " << length;
    }
  EXPECT_EQ(pidlock::detail::crc32(bytes), bitwise_crc32(bytes));
}

// Every padded length: the record is at least min_size long, ends in the
// checksum of everything before it, and keeps its fields.
TEST(HolderRecord, EveryMinSizeGivesAWellFormedRecord) {
  HolderRecord r = sample_record();
  const std::string natural = format_record(r);
  for (std::size_t min_size = natural.size() - 2; min_size < natural.size() + 12; ++min_size) {
    const std::string padded = format_record(r, min_size);
    ASSERT_GE(padded.size(), min_size);
    const std::size_t last_line = padded.rfind('\n', padded.size() - 2) + 1;
    EXPECT_EQ(with_checksum(padded.substr(0, last_line)), padded) << "min_size " << min_size;
    ParsedRecord parsed = parse_record(padded);
    ASSERT_TRUE(parsed.record) << parsed.problem;
    EXPECT_EQ(parsed.record->host, "db1");
  }
}

TEST(HolderRecord, UnknownFieldsAreIgnoredAndKept) {
  std::string bytes = format_record(sample_record());
  std::string body = bytes.substr(0, bytes.rfind("checksum="));
  body += "cluster=alpha\nreplica-of=db0\n";
  ParsedRecord parsed = parse_record(with_checksum(body));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->pid, 4242);
  EXPECT_EQ(parsed.record->status, "ready");
  ASSERT_EQ(parsed.record->unknown_fields.size(), 2u);
  EXPECT_EQ(parsed.record->unknown_fields.at("cluster"), "alpha");
  EXPECT_EQ(parsed.record->unknown_fields.at("replica-of"), "db0");
}

TEST(HolderRecord, NewerFormatVersionIsStillParsed) {
  std::string bytes = format_record(sample_record());
  std::string body = bytes.substr(0, bytes.rfind("checksum="));
  auto at = body.find("pidlock-format=1");
  ASSERT_NE(at, std::string::npos);
  body.replace(at, 16, "pidlock-format=7");
  body += "lease-expiry=1795753000\n";
  ParsedRecord parsed = parse_record(with_checksum(body));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->format, RecordFormat::kPidlock);
  EXPECT_EQ(parsed.record->format_version, 7u);
  EXPECT_EQ(parsed.record->pid, 4242);
  EXPECT_EQ(parsed.record->unknown_fields.count("lease-expiry"), 1u);
}

TEST(HolderRecord, ChecksumMismatchIsTorn) {
  std::string bytes = format_record(sample_record());
  auto at = bytes.find("status=ready");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 7] = 'R';  // "status=Ready": same length, wrong checksum
  ParsedRecord parsed = parse_record(bytes);
  EXPECT_FALSE(parsed.record);
  EXPECT_TRUE(parsed.torn);
  EXPECT_FALSE(parsed.problem.empty());
}

TEST(HolderRecord, TruncatedPidlockRecordIsNotParsed) {
  std::string bytes = format_record(sample_record());
  // Cut in a field, before the checksum line, and inside the checksum.
  const size_t checksum_at = bytes.rfind("checksum=");
  for (size_t cut : {bytes.size() / 2, checksum_at, checksum_at + 3, bytes.size() - 3}) {
    ParsedRecord parsed = parse_record(bytes.substr(0, cut));
    EXPECT_FALSE(parsed.record) << "cut at " << cut;
  }
}

TEST(HolderRecord, CrlfLineEndingsAreAccepted) {
  ParsedRecord parsed = parse_record("4242\r\n/srv/db\r\n1795752900\r\n5432\r\n/tmp\r\n");
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->pid, 4242);
  EXPECT_EQ(parsed.record->data_directory, "/srv/db");
  EXPECT_EQ(parsed.record->start_time, 1795752900);
  EXPECT_EQ(parsed.record->format, RecordFormat::kPostgresql);
  EXPECT_EQ(parsed.record->port, std::optional<int>(5432));
  EXPECT_EQ(parsed.record->socket_directory, "/tmp");
}

// Pid 0 is a pid file's line 1 all the same: an impossible holder, which
// the judge never gives to kill() (it must not wedge the path).
TEST(HolderRecord, PidZeroParsesAsAnImpossibleHolder) {
  for (const std::string& bytes : {std::string("0\n"), pidlock_test::postmaster_pid(0, "/srv/db", 1795752900)}) {
    ParsedRecord parsed = parse_record(bytes);
    ASSERT_TRUE(parsed.record) << parsed.problem;
    EXPECT_EQ(parsed.record->pid, 0);
    EXPECT_FALSE(parsed.record->single_user);
  }
}

TEST(HolderRecord, NegativePidIsPostgresqlSingleUser) {
  ParsedRecord parsed = parse_record(pidlock_test::postmaster_pid(-4242, "/srv/db", 1795752900));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->pid, 4242);
  EXPECT_TRUE(parsed.record->single_user);
  EXPECT_EQ(parsed.record->format, RecordFormat::kPostgresql);
}

TEST(HolderRecord, PlainPidFile) {
  ParsedRecord parsed = parse_record("4242\n");
  ASSERT_TRUE(parsed.record) << parsed.problem;
  EXPECT_EQ(parsed.record->format, RecordFormat::kPlainPid);
  EXPECT_EQ(parsed.record->pid, 4242);
}

TEST(HolderRecord, OverflowingDigitsAreNotParsedAndNeverCrash) {
  for (const char* text :
       {"99999999999999999999999999999999\n/srv/db\n1\n", "2147483648\n/srv/db\n1\n",
        "-2147483649\n/srv/db\n1\n", "-\n", "+42\n", "42abc\n", "0x10\n", "4194305\n",
        "4242\n/srv/db\n999999999999999999999999999\n"}) {
    ParsedRecord parsed = parse_record(text);
    EXPECT_FALSE(parsed.record) << text;
    EXPECT_TRUE(parsed.implausible) << text << ": not a lock record";
    EXPECT_FALSE(parsed.problem.empty()) << text;
  }
  // Leading spaces are the padding of X11's and UUCP's "%10d" layout.
  ParsedRecord padded = parse_record(" 42\n");
  ASSERT_TRUE(padded.record) << padded.problem;
  EXPECT_EQ(padded.record->pid, 42);
}

TEST(HolderRecord, EmptyGarbageNulAndHugeInputs) {
  ParsedRecord empty = parse_record("");
  EXPECT_TRUE(empty.empty);
  EXPECT_FALSE(empty.record);
  std::string lines(pidlock::kMaxRecordBytes, '\n');
  for (const std::string& bytes : {std::string("4242\n/srv\0db\n1\n", 16), std::string("\xff\xfe garbage \x01\x02\n\n\n"),
                                   std::string(64 * 1024, '7'), lines}) {
    ParsedRecord parsed = parse_record(bytes);
    EXPECT_FALSE(parsed.record);
    EXPECT_TRUE(parsed.implausible) << parsed.problem;
  }
  // NUL bytes alone are what a power loss leaves of a record written
  // without fsync: an empty file, in effect.
  ParsedRecord zeroed = parse_record(std::string(100, '\0'));
  EXPECT_FALSE(zeroed.record);
  EXPECT_TRUE(zeroed.zeroed);
  EXPECT_FALSE(zeroed.implausible);
}

TEST(HolderRecord, FieldsAfterFormatLineMustBeWellFormed) {
  std::string bytes = format_record(sample_record());
  std::string body = bytes.substr(0, bytes.rfind("checksum="));
  EXPECT_FALSE(parse_record(with_checksum(body + "process-start-ticks=abc\n")).record);
  EXPECT_FALSE(parse_record(with_checksum(body + "no equals sign\n")).record);
  EXPECT_FALSE(parse_record(body + "checksum=crc32:xyz\n").record);
}

TEST(HolderRecord, EveryMixOfTwoVersionsIsEitherOneOfThemOrTorn) {
  // update_status rewrites the record in place with one pwrite; a reader
  // that overlaps it may see the new record's first k bytes followed by the
  // old record's rest. For every k the parser must return one of the two
  // records or say "torn" (so that the reader reads again); it must never
  // call the mix a malformed record, which is judged unparsable at once.
  HolderRecord r = sample_record();
  for (const char* from : {"starting", "standby-with-a-long-name", "ready"}) {
    for (const char* to : {"x", "stopping", "ready"}) {
      r.status = from;
      const std::string old_bytes = format_record(r);
      r.status = to;
      const std::string new_bytes = format_record(r, old_bytes.size());
      ASSERT_GE(new_bytes.size(), old_bytes.size());
      for (size_t k = 0; k <= new_bytes.size(); ++k) {
        std::string mix = new_bytes.substr(0, k);
        if (k < old_bytes.size()) mix += old_bytes.substr(k);
        ParsedRecord parsed = parse_record(mix);
        if (parsed.record) {
          EXPECT_TRUE(parsed.record->status == from || parsed.record->status == to)
              << from << " -> " << to << " cut " << k << ": status " << parsed.record->status;
        } else {
          EXPECT_TRUE(parsed.torn) << from << " -> " << to << " cut " << k << ": " << parsed.problem;
        }
      }
    }
  }
}

TEST(HolderRecord, PidAbovePidMaxIsImpossible) {
  pidlock::detail::SelfIdentity self = pidlock::detail::self_identity();
  ASSERT_GT(self.pid_max, 0);
  // A foreign record (PostgreSQL) without kernel evidence: pid rules apply.
  // (Where pid_max is Linux's largest, pid_max + 1 is no pid at all.)
  if (self.pid_max >= 4194304) self.pid_max = 32768;
  ParsedRecord parsed =
      parse_record(pidlock_test::postmaster_pid(static_cast<long>(self.pid_max) + 1, "/srv/db",
                                                pidlock_test::now()));
  ASSERT_TRUE(parsed.record) << parsed.problem;
  pidlock::Inspection i =
      pidlock::detail::judge(parsed, pidlock::detail::KernelEvidence::kNone, {}, self);
  EXPECT_EQ(i.verdict, pidlock::Verdict::kStale);
  EXPECT_EQ(i.reason, pidlock::Reason::kPidImpossible) << i.detail;
}

TEST(HolderRecord, ToStringNamesFormats) {
  EXPECT_STREQ(pidlock::to_string(RecordFormat::kPidlock), "pidlock");
  EXPECT_STREQ(pidlock::to_string(RecordFormat::kPostgresql), "postgresql");
  EXPECT_STREQ(pidlock::to_string(RecordFormat::kPlainPid), "pidfile");
  EXPECT_STREQ(pidlock::to_string(RecordFormat::kFilelock), "filelock");
  EXPECT_STREQ(pidlock::to_string(RecordFormat::kNone), "none");
}

}  // namespace
