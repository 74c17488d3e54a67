// Taking over a stale lock file in place. Only the contender that holds
// the stale inode's kernel lock, and has checked that the path still names
// that inode, may rewrite it: the path then never goes empty, two
// contenders breaking one stale lock can never both win, and the winner
// always learns took_over().
#ifndef PIDLOCK_FILE_TAKEOVER_HPP
#define PIDLOCK_FILE_TAKEOVER_HPP

#include <pidlock/holder_record.hpp>
#include <pidlock/options.hpp>

#include "core/failure.hpp"
#include "file/lock_location.hpp"

#include <string>

namespace pidlock::detail {

// Writes our record over the stale file `file` (whose kernel lock we hold
// and which is the file at `loc`), then cuts off any old tail, and enters
// it in the process table; *written receives the bytes written. *adopted
// stays false, with no failure, when the file is not owned as one we
// create would be (another user's or group's: see file_owner.hpp) or was
// renamed away meanwhile; the caller then removes it and creates its own.
Failure adopt_stale(const LockLocation& loc, const AcquireOptions& options, const HolderRecord& record,
                    ExistingFile& file, bool* adopted, std::string* written);

}  // namespace pidlock::detail

#endif  // PIDLOCK_FILE_TAKEOVER_HPP
