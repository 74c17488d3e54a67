// pidlock's test support (tests/support/, the library pidlock_test_support
// that every suite links), in one include. Everything is in namespace
// pidlock_test; a test says `using namespace pidlock_test;`.
//
//   temp_dir.hpp       TempDir: a fresh folder, removed at the end
//   files.hpp          whole files and folders, read without the library
//   pipe.hpp           Pipe, lines and bytes with deadlines, kPatience
//   child.hpp          Child: forked or spawned processes, their end, output
//   exit_code.hpp      EXPECT_EXIT_CODE, ASSERT_EXIT_CODE on an Outcome
//   lock_children.hpp  locks held, left stale or inspected by children
//   kernel_lock.hpp    who holds a lock file's kernel locks
//   loopback.hpp       TCP on 127.0.0.1: free ports, listening, connecting
//   notify_socket.hpp  NotifySocket: a NOTIFY_SOCKET (sd_notify) the test owns
//   in_poll.hpp        knowing that a waiter really waits
//   eventually.hpp     polling for a state no pipe announces
//   proc.hpp           facts from /proc; clocks
//   foreign_files.hpp  PostgreSQL's lock files
//   verdicts.hpp       "held kernel-lock-held": a verdict and its reason
//   privileges.hpp     dropping root in a child
//   fault_system.hpp   FaultSystem, ScopedSystem: faults through the seam
//   etcd_cluster.hpp   EtcdCluster (PIDLOCK_WITH_ETCD builds only)
#ifndef PIDLOCK_TESTS_SUPPORT_TEST_SUPPORT_HPP
#define PIDLOCK_TESTS_SUPPORT_TEST_SUPPORT_HPP

#include "support/child.hpp"
#include "support/eventually.hpp"
#include "support/exit_code.hpp"
#include "support/fault_system.hpp"
#include "support/files.hpp"
#include "support/foreign_files.hpp"
#include "support/in_poll.hpp"
#include "support/kernel_lock.hpp"
#include "support/lock_children.hpp"
#include "support/loopback.hpp"
#include "support/notify_socket.hpp"
#include "support/pipe.hpp"
#include "support/privileges.hpp"
#include "support/proc.hpp"
#include "support/temp_dir.hpp"
#include "support/verdicts.hpp"

#endif  // PIDLOCK_TESTS_SUPPORT_TEST_SUPPORT_HPP
