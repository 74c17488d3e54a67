#include <pidlock/inspection.hpp>

namespace pidlock {

const char* to_string(Verdict verdict) noexcept {
  switch (verdict) {
    case Verdict::kFree: return "free";
    case Verdict::kHeld: return "held";
    case Verdict::kStale: return "stale";
    case Verdict::kUnknown: return "unknown";
  }
  return "unknown";
}

const char* to_string(Reason reason) noexcept {
  switch (reason) {
    case Reason::kNoLockFile: return "no-lock-file";
    case Reason::kHeldByThisProcess: return "held-by-this-process";
    case Reason::kKernelLockHeld: return "kernel-lock-held";
    case Reason::kKernelLockFree: return "kernel-lock-free";
    case Reason::kEmptyFile: return "empty-file";
    case Reason::kUnparsable: return "unparsable";
    case Reason::kPidAlive: return "pid-alive";
    case Reason::kPidAliveOtherUser: return "pid-alive-other-user";
    case Reason::kPidDead: return "pid-dead";
    case Reason::kPidDeadOtherUser: return "pid-other-user-assumed-dead";
    case Reason::kZombie: return "zombie";
    case Reason::kPidReused: return "pid-reused";
    case Reason::kPidImpossible: return "pid-impossible";
    case Reason::kOwnIncarnation: return "own-pid-other-incarnation";
    case Reason::kOwnProcessUnproven: return "own-pid-unproven";
    case Reason::kOtherBoot: return "other-boot";
    case Reason::kOtherHost: return "other-host";
    case Reason::kOtherPidNamespace: return "other-pid-namespace";
    case Reason::kProbeFailed: return "probe-failed";
    case Reason::kUnreadable: return "unreadable";
    case Reason::kReleased: return "released";
    case Reason::kNotALockRecord: return "not-a-lock-record";
    case Reason::kFlockHeld: return "flock-held";
    case Reason::kLockFileOpen: return "lock-file-open";
    case Reason::kDataDirectoryInUse: return "data-directory-in-use";
    case Reason::kSharedMemoryAttached: return "shared-memory-attached";
    case Reason::kSocketListening: return "socket-listening";
    case Reason::kLeaseAlive: return "lease-alive";
  }
  return "unknown";
}

}  // namespace pidlock
