/// \file
/// pidlock: exact, race-free lock files for daemons, databases and cron jobs.
/// Include this header for the whole public API.
///
/// \mainpage pidlock API reference
///
/// pidlock gives one process exclusive ownership of a resource, above all a
/// daemon's data directory, through a lock file in the manner of
/// PostgreSQL's postmaster.pid, judged by a kernel lock its holder keeps.
/// Include `<pidlock/pidlock.hpp>` and link pidlock::pidlock.
///
/// Where to start:
///  * pidlock::LockManager: acquire(), inspect(), break_stale(),
///    wait_until_free(), release_all();
///  * pidlock::LockHandle: the held lock (update_status(), recheck(),
///    took_over(), previous_holder(), release());
///  * pidlock::guard_data_directory() and pidlock::lock_unix_socket(): a
///    daemon's start-up;
///  * pidlock::LockWatch and pidlock::LossMonitor: noticing a lost lock;
///  * pidlock::Inspection, pidlock::HolderRecord: verdicts and records;
///  * pidlock::Error, pidlock::LockHeldError, pidlock::errc: failures;
///  * service_manager.hpp: systemd's sd_notify, spoken by update_status();
///  * pidlock::Path: paths, from boost::filesystem or std::filesystem;
///  * logging.hpp: receiving pidlock's log records (silent by default);
///    boost_log.hpp: forwarding them to Boost.Log.
///
/// The user guide is docs/guide.md in the source tree; how the guarantees
/// are achieved is docs/how-it-works.md.
///
/// \namespace pidlock
/// pidlock's public API.
#ifndef PIDLOCK_PIDLOCK_HPP
#define PIDLOCK_PIDLOCK_HPP

#include <pidlock/canceller.hpp>
#include <pidlock/data_directory.hpp>
#include <pidlock/error.hpp>
#include <pidlock/holder_record.hpp>
#include <pidlock/inspection.hpp>
#include <pidlock/lock_handle.hpp>
#include <pidlock/lock_manager.hpp>
#include <pidlock/lock_watch.hpp>
#include <pidlock/logging.hpp>
#include <pidlock/options.hpp>
#include <pidlock/path.hpp>
#include <pidlock/service_manager.hpp>
#include <pidlock/unix_socket.hpp>
#include <pidlock/version.hpp>

#endif  // PIDLOCK_PIDLOCK_HPP
