#include "file/process_table.hpp"

#include "posix/system.hpp"

#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace pidlock::detail {
namespace {

struct Table {
  std::mutex mutex;
  pid_t owner = 0;
  std::map<std::pair<dev_t, ino_t>, std::thread::id> held;

  // Entries filled by another pid were inherited through fork(): they are
  // the parent's locks, not ours.
  void forget_if_forked() {
    pid_t self = sys().getpid();
    if (owner != self) {
      held.clear();
      owner = self;
    }
  }
};

Table& table() {
  static Table* instance = new Table;  // never destroyed: used at exit
  return *instance;
}

}  // namespace

bool table_insert(dev_t dev, ino_t ino) {
  Table& t = table();
  std::lock_guard<std::mutex> guard(t.mutex);
  t.forget_if_forked();
  return t.held.emplace(std::make_pair(dev, ino), std::this_thread::get_id()).second;
}

void table_erase(dev_t dev, ino_t ino) {
  Table& t = table();
  std::lock_guard<std::mutex> guard(t.mutex);
  t.forget_if_forked();
  t.held.erase({dev, ino});
}

TableEntry table_lookup(dev_t dev, ino_t ino) {
  Table& t = table();
  std::lock_guard<std::mutex> guard(t.mutex);
  t.forget_if_forked();
  auto it = t.held.find({dev, ino});
  if (it == t.held.end()) return TableEntry::kAbsent;
  return it->second == std::this_thread::get_id() ? TableEntry::kThisThread : TableEntry::kOtherThread;
}

}  // namespace pidlock::detail
