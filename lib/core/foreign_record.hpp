// Recognising the lock files of other writers: PostgreSQL's, plain pid
// files in their common layouts, and Python filelock's soft-lock marker
// (include/pidlock/holder_record.hpp lists the layouts). Anything else is
// not a lock record, and says what it looks like instead, so that a person
// can tell a mistyped lock path from a damaged lock.
#ifndef PIDLOCK_CORE_FOREIGN_RECORD_HPP
#define PIDLOCK_CORE_FOREIGN_RECORD_HPP

#include <pidlock/holder_record.hpp>

#include <string_view>

namespace pidlock::detail {

// The largest pid Linux can ever give (PID_MAX_LIMIT on 64-bit kernels):
// a larger number on line 1 is a counter or a time, not a pid.
inline constexpr long long kLargestLinuxPid = 4194304;

// Parses `bytes` -- not empty, at most kMaxRecordBytes, without NUL bytes,
// and not a pidlock record -- as one of the foreign layouts. When none
// matches, the result is `implausible`, and its problem describes what
// the bytes are ("2 lines of text, the first \"hello\"").
ParsedRecord parse_foreign_record(std::string_view bytes);

// What `bytes` look like, in a few words, for a message to a person.
std::string describe_content(std::string_view bytes);

}  // namespace pidlock::detail

#endif  // PIDLOCK_CORE_FOREIGN_RECORD_HPP
