/// \file
/// Symbol visibility for pidlock. The library is built with hidden visibility;
/// only declarations marked PIDLOCK_EXPORT are part of the shared object's ABI.
#ifndef PIDLOCK_EXPORT_HPP
#define PIDLOCK_EXPORT_HPP

#if defined(PIDLOCK_STATIC_DEFINE)
/// Marks a declaration as exported from libpidlock.so (empty for the static library).
#define PIDLOCK_EXPORT
#elif defined(__GNUC__) || defined(__clang__)
#define PIDLOCK_EXPORT [[gnu::visibility("default")]]
#else
#define PIDLOCK_EXPORT
#endif

#endif  // PIDLOCK_EXPORT_HPP
