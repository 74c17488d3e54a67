#include "file/process_table.hpp"

#include "posix/system.hpp"

#include <mutex>
#include <set>
#include <utility>

namespace pidlock::detail {
namespace {

struct Table {
  std::mutex mutex;
  pid_t owner = 0;
  std::set<std::pair<dev_t, ino_t>> held;

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
  return t.held.emplace(dev, ino).second;
}

void table_erase(dev_t dev, ino_t ino) {
  Table& t = table();
  std::lock_guard<std::mutex> guard(t.mutex);
  t.forget_if_forked();
  t.held.erase({dev, ino});
}

bool table_contains(dev_t dev, ino_t ino) {
  Table& t = table();
  std::lock_guard<std::mutex> guard(t.mutex);
  t.forget_if_forked();
  return t.held.count({dev, ino}) != 0;
}

}  // namespace pidlock::detail
