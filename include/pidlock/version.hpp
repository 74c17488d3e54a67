/// \file
/// pidlock's version.
#ifndef PIDLOCK_VERSION_HPP
#define PIDLOCK_VERSION_HPP

#define PIDLOCK_VERSION_MAJOR 0          ///< incompatible API changes
#define PIDLOCK_VERSION_MINOR 1          ///< compatible additions
#define PIDLOCK_VERSION_PATCH 0          ///< fixes
#define PIDLOCK_VERSION_STRING "0.1.0"   ///< "MAJOR.MINOR.PATCH"

#endif  // PIDLOCK_VERSION_HPP
