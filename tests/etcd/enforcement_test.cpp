// `pidlock run` on etcd enforces the lease: the job is told its
// fencing token, dies with pidlock, and is stopped when the lock is lost,
// before anyone else can hold the lock. The witness job
// (witness_job_main.cpp) proves "no two jobs at once" with a kernel lock
// that its death releases, however it dies.
#include "etcd_fixture.hpp"
#include "fault_proxy.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

namespace pidlock_etcd_test {
namespace {

using namespace std::chrono_literals;

// The lines of a witness log, in order.
std::vector<std::vector<std::string>> witness_lines(const std::string& log) {
  std::vector<std::vector<std::string>> out;
  // The log may not exist yet: no job has started.
  std::istringstream in(try_read_file(log).value_or(""));
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (!w.empty()) out.push_back(w);
  }
  return out;
}

// Waits until the log has a line starting with `word`, returns it.
std::optional<std::vector<std::string>> wait_for_line(const std::string& log, const std::string& word,
                                                      std::size_t nth = 0, std::chrono::seconds within = 15s) {
  const auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    std::size_t seen = 0;
    for (auto& w : witness_lines(log))
      if (w[0] == word && seen++ == nth) return w;
    std::this_thread::sleep_for(20ms);
  }
  return std::nullopt;
}

// An orphaned job is reaped by PID 1, which on some machines never does:
// a zombie has died all the same.
bool dead_but_unreaped(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto end_of_name = stat.rfind(')');
  return end_of_name != std::string::npos && end_of_name + 2 < stat.size() && stat[end_of_name + 2] == 'Z';
}

bool process_gone(pid_t pid, std::chrono::milliseconds within) {
  const auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    if (dead_but_unreaped(pid)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

std::vector<std::string> pidlock_run(const std::string& address, const std::vector<std::string>& command,
                                     const std::vector<std::string>& options = {}) {
  std::vector<std::string> argv = {PIDLOCK_CLI, "run"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back(address);
  argv.push_back("--");
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

// `pidlock run` as a child the test can signal and wait for.
Child spawn_pidlock_run(const std::string& address, const std::vector<std::string>& command,
                        const std::vector<std::string>& options = {}) {
  return Child::spawn(pidlock_run(address, command, options), Stdio::interactive());
}

class EtcdRunTest : public EtcdTest {
 protected:
  TempDir dir_;
};

TEST_F(EtcdRunTest, TheJobIsToldItsFencingTokenAndLock) {
  const std::string address = cluster_.address("told", 5);
  const std::string out = dir_ / "env";
  std::string err;
  int status = run_pidlock({"run", address, "--", "sh", "-c",
                            "printf '%s\\n%s\\n' \"$PIDLOCK_FENCING_TOKEN\" \"$PIDLOCK_LOCK\" > " + out},
                           &err);
  ASSERT_EQ(status, 0) << err;
  std::istringstream in(read_file(out));
  std::string token, lock;
  std::getline(in, token);
  std::getline(in, lock);
  EXPECT_GT(std::stoull(token), 0u);
  EXPECT_EQ(lock, address);
  // A lock file: the path, and no token.
  status = run_pidlock({"run", dir_ / "file.lock", "--", "sh", "-c",
                        "printf '%s\\n%s\\n' \"${PIDLOCK_FENCING_TOKEN-unset}\" \"$PIDLOCK_LOCK\" > " + out},
                       &err);
  ASSERT_EQ(status, 0) << err;
  EXPECT_EQ(read_file(out), "unset\n" + dir_ / "file.lock" + "\n");
}

// pidlock SIGKILLed: nobody renews the lease any more, so the job must not
// outlive it; it gets SIGKILL at once.
TEST_F(EtcdRunTest, TheJobDiesWithPidlock) {
  const std::string log = dir_ / "log";
  Child run = spawn_pidlock_run(cluster_.address("dies", 5),
                                {PIDLOCK_ETCD_WITNESS_JOB, dir_ / "witness", log, "60000"});
  auto start = wait_for_line(log, "start");
  ASSERT_TRUE(start) << "the job never started";
  const pid_t job = std::stoi((*start)[1]);
  run.kill(SIGKILL);
  ASSERT_TRUE(run.wait(kPatience));
  EXPECT_TRUE(process_gone(job, 2s)) << "the job outlived pidlock";
}

// The lock is lost while the job runs (pidlock is cut off from etcd): the
// job gets SIGTERM, then SIGKILL 0.2 s later (it ignores SIGTERM), pidlock
// exits 79, and the next job starts only after this one is dead.
TEST_F(EtcdRunTest, LostLockStopsTheJobBeforeTheNextHolderStarts) {
  constexpr int kTtl = 3;
  std::vector<std::unique_ptr<FaultProxy>> proxies;
  std::string via;
  for (int i = 0; i < cluster_.size(); ++i) {
    proxies.push_back(std::make_unique<FaultProxy>(cluster_.client_port(i)));
    via += (via.empty() ? "" : ",") + proxies.back()->endpoint();
  }
  const std::string log = dir_ / "log";
  const std::string witness = dir_ / "witness";
  Child first = spawn_pidlock_run(cluster_.address_via(via, "lost", kTtl),
                                  {PIDLOCK_ETCD_WITNESS_JOB, witness, log, "60000", "ignore-term"},
                                  {"--kill-after", "0.2"});
  auto started = wait_for_line(log, "start");
  ASSERT_TRUE(started);
  Child second = spawn_pidlock_run(cluster_.address("lost", kTtl), {PIDLOCK_ETCD_WITNESS_JOB, witness, log, "200"},
                                   {"--wait"});
  std::this_thread::sleep_for(300ms);
  for (auto& p : proxies) p->drop();
  std::optional<int> status = first.wait(std::chrono::seconds(3 * kTtl));
  ASSERT_TRUE(status) << "pidlock did not stop its job";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 79) << describe_status(*status);
  EXPECT_TRUE(process_gone(std::stoi((*started)[1]), 100ms));
  auto next = wait_for_line(log, "start", 1, std::chrono::seconds(3 * kTtl));
  ASSERT_TRUE(next) << "the second job never ran";
  EXPECT_GT(std::stoull((*next)[2]), std::stoull((*started)[2]));
  status = second.wait(std::chrono::seconds(10));
  EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << (status ? describe_status(*status) : "still running");
  for (auto& w : witness_lines(log)) EXPECT_NE(w[0], "overlap") << "two jobs ran at once";
  for (auto& p : proxies) p->pass();
}

// Several `pidlock run --wait` loops on one lock, each behind its own fault
// proxies; at random, jobs are SIGKILLed, pidlock processes are SIGKILLed,
// and loops are cut off from etcd for a while (their locks lost). The
// witness must never see two jobs at once, and fencing tokens must grow in
// the order the jobs ran. PIDLOCK_ETCD_CHURN_SECONDS sets the length (the
// default suits ctest; scripts/etcd-churn.sh runs it long).
TEST_F(EtcdRunTest, ChurnWithKillsAndPartitionsNeverOverlaps) {
  const char* env = std::getenv("PIDLOCK_ETCD_CHURN_SECONDS");
  const int seconds = env ? std::atoi(env) : 15;
  constexpr int kSlots = 3;
  constexpr int kTtl = 2;
  const std::string log = dir_ / "log";
  const std::string witness = dir_ / "witness";
  std::vector<std::vector<std::unique_ptr<FaultProxy>>> proxies(kSlots);
  std::vector<std::string> addresses;
  for (int s = 0; s < kSlots; ++s) {
    std::string via;
    for (int i = 0; i < cluster_.size(); ++i) {
      proxies[s].push_back(std::make_unique<FaultProxy>(cluster_.client_port(i)));
      via += (via.empty() ? "" : ",") + proxies[s].back()->endpoint();
    }
    addresses.push_back(cluster_.address_via(via, "churn", kTtl));
  }
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::map<int, int> statuses;        // exit status -> count
  std::vector<pid_t> running(kSlots, -1);
  std::vector<std::thread> loops;
  for (int s = 0; s < kSlots; ++s) {
    loops.emplace_back([&, s] {
      std::mt19937 random(1000 + s);
      while (!stop) {
        std::vector<std::string> job = {PIDLOCK_ETCD_WITNESS_JOB, witness, log,
                                        std::to_string(100 + random() % 2000)};
        if (random() % 3 == 0) job.push_back("ignore-term");
        Child run = spawn_pidlock_run(addresses[s], job, {"--wait"});
        {
          std::lock_guard<std::mutex> guard(mutex);
          running[s] = run.pid();
        }
        std::optional<int> status = run.wait(std::chrono::seconds(60));
        std::lock_guard<std::mutex> guard(mutex);
        running[s] = -1;
        ++statuses[status ? exit_code(*status) : -1];
      }
    });
  }
  std::mt19937 random(42);
  int kills = 0, job_kills = 0, partitions = 0;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + random() % 500));
    switch (random() % 4) {
      case 0: {  // SIGKILL a pidlock
        std::lock_guard<std::mutex> guard(mutex);
        pid_t p = running[random() % kSlots];
        if (p > 0 && ::kill(p, SIGKILL) == 0) ++kills;
        break;
      }
      case 1: {  // SIGKILL the job that runs now, if any
        auto lines = witness_lines(log);
        if (!lines.empty() && lines.back()[0] == "start" && ::kill(std::stoi(lines.back()[1]), SIGKILL) == 0)
          ++job_kills;
        break;
      }
      case 2: {  // cut a loop off from etcd for 1.5-3 s: the one whose job runs, if any
        int s = static_cast<int>(random() % kSlots);
        auto lines = witness_lines(log);
        if (!lines.empty() && lines.back()[0] == "start" && lines.back().size() > 3)
          for (int i = 0; i < kSlots; ++i)
            if (addresses[i] == lines.back()[3]) s = i;
        for (auto& p : proxies[s]) p->drop();
        std::this_thread::sleep_for(std::chrono::milliseconds(1500 + random() % 1500));
        for (auto& p : proxies[s]) p->pass();
        ++partitions;
        break;
      }
      default:
        break;
    }
  }
  stop = true;
  for (auto& t : loops) t.join();

  int starts = 0, overlaps = 0;
  unsigned long long last_token = 0;
  for (auto& w : witness_lines(log)) {
    if (w[0] == "overlap") ++overlaps;
    if (w[0] != "start") continue;
    ++starts;
    unsigned long long token = std::stoull(w[2]);
    EXPECT_GT(token, last_token) << "fencing tokens must grow from job to job";
    last_token = token;
  }
  std::string summary;
  for (auto& [status, count] : statuses) summary += " " + std::to_string(status) + ":" + std::to_string(count);
  std::cout << "[ churn    ] " << seconds << " s, " << starts << " jobs, " << kills << " pidlock kills, " << job_kills
            << " job kills, " << partitions << " partitions, overlaps " << overlaps << ", exit statuses" << summary
            << "\n";
  EXPECT_EQ(overlaps, 0);
  EXPECT_GE(starts, seconds / 3);
  EXPECT_EQ(statuses.count(-1), 0u) << "a pidlock run hung";
}

}  // namespace
}  // namespace pidlock_etcd_test
