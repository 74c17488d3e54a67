// A watch on one key that stays on a member able to tell it the truth.
//
// A watch stream is silent both when nothing happens and when its member is
// frozen (SIGSTOP, a VM pause, a hung disk) or cut off from the others:
// TCP keep-alive does not help, since a frozen member's kernel still
// answers it. So every kProbeInterval the watch asks the stream's own
// member for the key with a linearizable read, which that member can answer
// only while it is alive and in touch with a leader. A member not heard from
// for kSilenceLimit: the stream moves to another member, from the revision
// after the last event seen, so nothing is lost. An answer that shows a
// change the stream has not delivered yet (the key gone, or written at a
// revision past the stream's) is handed out as an event, so a lagging
// stream cannot hide a change for longer than one probe interval.
//
// Together with the streams' "require a leader" flag (etcd ends them when
// their member loses its leader), a waiter or holder is never stranded on
// a member that cannot report the key's deletion.
//
// Thread safety: used by one thread at a time; never after fork().
#ifndef PIDLOCK_ETCD_KEY_WATCH_HPP
#define PIDLOCK_ETCD_KEY_WATCH_HPP

#include "etcd/client.hpp"
#include "etcd/watch_stream.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pidlock::detail::etcd {

inline constexpr std::chrono::milliseconds kProbeInterval{1000};
inline constexpr std::chrono::milliseconds kProbeTimeout{700};
// A member not heard from (no probe answered, no watch message) for this
// long is taken for frozen or cut off, and the watch moves on.
inline constexpr std::chrono::milliseconds kSilenceLimit{2000};
inline constexpr std::chrono::milliseconds kWatchOpenTimeout{1000};

class KeyWatch {
 public:
  // `client` gives the cluster, its auth token and cluster id; it must
  // outlive the watch. The stream starts on member `preferred`.
  KeyWatch(Client& client, std::size_t preferred);
  ~KeyWatch();

  // Watches `key` from `from_revision` on: deletes only, or every change.
  // Does not wait: the stream opens during the next wait().
  void start(const std::string& key, std::int64_t from_revision, bool deletes_only);

  enum class Result {
    kEvents,     // *events holds at least one event (perhaps one a probe made up)
    kTimeout,    // `until` came
    kCancelled,  // `wake_fd` became readable
    kCompacted,  // the history to resume from is gone: look at the key again
  };
  // Waits until `until`, `wake_fd` (-1: none), or a change of the key.
  // While no member can be watched it keeps trying (every kRetry) and keeps
  // probing through the client, so that a change is still seen.
  Result wait(Clock::time_point until, int wake_fd, std::vector<WatchEvent>* events);

  void abandon() noexcept;  // see Client::abandon

 private:
  // Asks the stream's member (or, without a stream, any member) for the key.
  // Returns true with *events set when it saw a change the stream did not
  // deliver.
  bool probe(Clock::time_point until, int wake_fd, std::vector<WatchEvent>* events);
  Client& probe_client(std::size_t member);
  // Tries to open the stream on the next member; false if `wake_fd` fired.
  bool open_stream(Clock::time_point until, int wake_fd);
  // Closes the stream; the next open goes to the member after this one.
  void leave_member(const std::string& why);

  Client& client_;
  WatchStream stream_;
  std::string key_;
  bool deletes_only_ = false;
  Clock::time_point next_probe_;
  Clock::time_point next_open_;
  Clock::time_point last_heard_;  // from the stream's member
  std::unique_ptr<Client> member_client_;  // pinned to one member, for probes
  std::size_t member_client_for_ = static_cast<std::size_t>(-1);
};

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_KEY_WATCH_HPP
