// pidlock: exact, race-free lock files for daemons, databases and cron jobs.
// Include this header for the whole public API.
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
#include <pidlock/unix_socket.hpp>
#include <pidlock/version.hpp>

#endif  // PIDLOCK_PIDLOCK_HPP
