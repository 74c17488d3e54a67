#include "etcd/key_watch.hpp"

#include "etcd/base64.hpp"
#include "core/log.hpp"
#include "posix/notifier.hpp"

#include <algorithm>

namespace pidlock::detail::etcd {

namespace {

// While no member accepts the watch, try again this often.
constexpr std::chrono::milliseconds kReopenRetry{250};

}  // namespace

KeyWatch::KeyWatch(Client& client, std::size_t preferred)
    : client_(client), stream_(client.cluster(), preferred) {}

KeyWatch::~KeyWatch() = default;

void KeyWatch::abandon() noexcept {
  stream_.abandon();
  if (member_client_) member_client_->abandon();
  (void)member_client_.release();
}

void KeyWatch::start(const std::string& key, std::int64_t from_revision, bool deletes_only) {
  key_ = key;
  deletes_only_ = deletes_only;
  // Opened by wait(), within its caller's time.
  stream_.prepare(key, from_revision, deletes_only);
  next_open_ = Clock::now();
  next_probe_ = Clock::now() + kProbeInterval;
}

Client& KeyWatch::probe_client(std::size_t member) {
  if (!member_client_ || member_client_for_ != member) {
    Cluster one = client_.cluster();
    one.endpoints = {client_.cluster().endpoints[member]};
    member_client_ = std::make_unique<Client>(one);
    if (!client_.cluster_id().empty()) member_client_->expect_cluster(client_.cluster_id());
    member_client_for_ = member;
  }
  return *member_client_;
}

bool KeyWatch::probe(Clock::time_point until, int wake_fd, std::vector<WatchEvent>* events) {
  const bool pinned = stream_.is_open();
  Client& c = pinned ? probe_client(stream_.member()) : client_;
  // serializable=false (the default): the member must confirm with a leader.
  // Bounded by the caller's `until`; a probe cut short just proves nothing.
  Reply r = c.call("/v3/kv/range", Json{{"key", base64_encode(key_)}}, std::min(Clock::now() + kProbeTimeout, until),
                   wake_fd);
  if (!r.ok()) {
    PIDLOCK_LOG(debug) << "etcd: probe of " << key_ << " failed: " << r.message;
    return false;
  }
  if (pinned) last_heard_ = Clock::now();
  std::vector<KeyValue> kvs = range_kvs(r.body);
  if (kvs.empty()) {
    WatchEvent gone;
    gone.deleted = true;
    gone.kv.key = key_;
    gone.kv.mod_revision = header_revision(r.body);
    events->push_back(std::move(gone));
    return true;
  }
  if (!deletes_only_ && kvs[0].mod_revision >= stream_.next_revision()) {
    events->push_back(WatchEvent{false, std::move(kvs[0])});
    return true;
  }
  return false;
}

bool KeyWatch::open_stream(Clock::time_point until, int wake_fd) {
  std::string problem;
  Reply failure;
  (void)client_.authenticate(until, &failure, wake_fd);
  auto timeout = std::min<Clock::duration>(kWatchOpenTimeout, until - Clock::now());
  if (stream_.reopen(client_.token(), std::chrono::duration_cast<std::chrono::milliseconds>(timeout), &problem, wake_fd,
                     /*members=*/1)) {
    last_heard_ = Clock::now();  // the member just answered
    next_probe_ = last_heard_ + kProbeInterval;
    return true;
  }
  if (problem == "cancelled") return false;
  PIDLOCK_LOG(debug) << "etcd: cannot watch " << key_ << ": " << problem;
  next_open_ = Clock::now() + kReopenRetry;
  return true;
}

void KeyWatch::leave_member(const std::string& why) {
  PIDLOCK_LOG(debug) << "etcd: watch of " << key_ << " leaves member "
                     << client_.cluster().endpoints[stream_.member()].host_port << ": " << why;
  stream_.avoid(stream_.member());
  stream_.close();
  next_open_ = Clock::now();
}

KeyWatch::Result KeyWatch::wait(Clock::time_point until, int wake_fd, std::vector<WatchEvent>* events) {
  events->clear();
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (now >= until) return Result::kTimeout;
    if (!stream_.is_open() && now >= next_open_) {
      if (!open_stream(until, wake_fd)) return Result::kCancelled;
      continue;
    }
    if (stream_.is_open() && now - last_heard_ >= kSilenceLimit) {
      leave_member("nothing heard for " + std::to_string(kSilenceLimit.count()) + " ms");
      continue;
    }
    // A probe runs when due and there is time for it before `until` (the
    // caller's next renewal, usually), or when it is a whole interval late.
    if (now >= next_probe_ && (until - now >= kProbeTimeout || now - next_probe_ >= kProbeInterval)) {
      bool changed = probe(until, wake_fd, events);
      if (wake_fd >= 0 && sleep_until({}, wake_fd, std::chrono::milliseconds(0)) == Wake::kCancelled)
        return Result::kCancelled;
      next_probe_ = Clock::now() + kProbeInterval;
      if (changed) return Result::kEvents;
      continue;
    }
    Clock::time_point wake = until;
    if (next_probe_ > now) wake = std::min(wake, next_probe_);
    if (!stream_.is_open()) {
      if (sleep_until({}, wake_fd, std::min(wake, next_open_) - now) == Wake::kCancelled) return Result::kCancelled;
      continue;
    }
    switch (stream_.wait(std::min(wake, last_heard_ + kSilenceLimit), wake_fd, events)) {
      case WatchStream::Result::kEvents:
        last_heard_ = Clock::now();
        return Result::kEvents;
      case WatchStream::Result::kTimeout: continue;
      case WatchStream::Result::kCancelled: return Result::kCancelled;
      case WatchStream::Result::kCompacted: return Result::kCompacted;
      case WatchStream::Result::kBroken:
        if (stream_.error().find("auth token") != std::string::npos) client_.drop_token();
        // The member just dropped us (it died, or lost its leader).
        leave_member("the stream ended: " + stream_.error());
        continue;
    }
  }
}

}  // namespace pidlock::detail::etcd
