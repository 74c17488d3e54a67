// Waiting acquires: hand-off on release and on death, deadline,
// cancellation, many waiters, a lock file re-created under its waiters.
#include "waiting_support.hpp"

#include <pidlock/pidlock.hpp>

#include <gtest/gtest.h>
