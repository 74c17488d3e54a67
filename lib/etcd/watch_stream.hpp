// One watch on one key over the gateway's streaming /v3/watch: each message
// is a JSON object on its own line of a long-lived response. Resuming after
// a broken stream starts from the revision after the last event seen, so no
// event is lost (unless etcd compacted it away, which the stream reports).
//
// A stream only tells us what its member knows, and a frozen member tells
// nothing while its kernel keeps the connection open; KeyWatch (key_watch.hpp)
// adds the liveness checks. Streams ask etcd to end them when their member
// loses its leader (Grpc-Metadata-hasleader).
//
// Thread safety: used by one thread at a time; never after fork().
#ifndef PIDLOCK_ETCD_WATCH_STREAM_HPP
#define PIDLOCK_ETCD_WATCH_STREAM_HPP

#include "etcd/address.hpp"
#include "etcd/reply.hpp"
#include "etcd/transport.hpp"

#include <optional>
#include <string>
#include <vector>

namespace pidlock::detail::etcd {

struct WatchEvent {
  bool deleted = false;
  KeyValue kv;  // for a delete: key and mod_revision only
};

class WatchStream {
 public:
  WatchStream(Cluster cluster, std::size_t preferred);
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // Starts watching `key` from `start_revision` (deletes only, or every
  // change), on the preferred member first, then the others. Returns false
  // with *problem when no member accepted the watch within `open_timeout`
  // each, or `wake_fd` (-1: none) became readable.
  bool open(const std::string& key, std::int64_t start_revision, bool deletes_only, const std::string& token,
            std::chrono::milliseconds open_timeout, std::string* problem, int wake_fd = -1);
  // Sets what open() would watch, without opening: the next reopen() opens.
  void prepare(const std::string& key, std::int64_t start_revision, bool deletes_only);
  // Opens again after kBroken, from the revision after the last event seen,
  // trying at most `members` members (from the preferred one on; the next
  // call goes on where this one stopped).
  bool reopen(const std::string& token, std::chrono::milliseconds open_timeout, std::string* problem,
              int wake_fd = -1, std::size_t members = static_cast<std::size_t>(-1));
  bool is_open() const noexcept { return transfer_.easy != nullptr; }
  void close() noexcept;

  // The member the stream is on (valid while open).
  std::size_t member() const noexcept { return preferred_; }
  // The next open tries the member after `member` first.
  void avoid(std::size_t member) noexcept { preferred_ = (member + 1) % cluster_.endpoints.size(); }

  enum class Result {
    kEvents,     // *events holds at least one event
    kTimeout,    // the deadline passed
    kCancelled,  // `wake_fd` became readable
    kBroken,     // the stream ended (member gone, leader lost); reopen()
    kCompacted,  // the revision to resume from is gone; look at the key again
  };
  // Waits for events until `deadline` (none: no limit) or `wake_fd` (-1:
  // none) is readable.
  Result wait(std::optional<Clock::time_point> deadline, int wake_fd, std::vector<WatchEvent>* events);

  // The revision after the last event seen: where a resumed watch starts.
  std::int64_t next_revision() const noexcept { return next_revision_; }
  // Why the stream ended or could not open.
  const std::string& error() const noexcept { return error_; }

  void abandon() noexcept;  // see Client::abandon

 private:
  // kEvents once created; kCancelled when `wake_fd` fired; else failed.
  Result open_on(std::size_t member, const std::string& token, std::chrono::milliseconds open_timeout,
                 std::string* problem, int wake_fd);
  // Parses complete lines of the response: returns true when the stream
  // said something that ends a wait (events, cancel, error).
  bool parse_lines(Result* result);
  Result pump(std::optional<Clock::time_point> deadline, int wake_fd, bool until_created);

  Cluster cluster_;
  std::size_t preferred_;
  std::string key_;
  bool deletes_only_ = false;
  std::int64_t next_revision_ = 0;
  bool created_ = false;
  std::optional<Result> ended_;  // kBroken/kCompacted once the stream ended
  std::vector<WatchEvent> pending_;  // parsed, not yet handed out
  std::string request_;
  std::string error_;
  Transfer transfer_;
  void* multi_ = nullptr;  // CURLM*
  curl_slist* headers_ = nullptr;
  bool abandoned_ = false;
};

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_WATCH_STREAM_HPP
