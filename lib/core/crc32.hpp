// CRC-32 (ISO-HDLC: zlib's, and Boost.CRC's crc_32_type) of the lock
// record, the checksum on its last line.
#ifndef PIDLOCK_CORE_CRC32_HPP
#define PIDLOCK_CORE_CRC32_HPP

#include <cstdint>
#include <string_view>

namespace pidlock::detail {

// The CRC-32 of `bytes`, as an older reader computes it (byte by byte,
// reflected polynomial 0xEDB88320, initial value and final xor all ones).
std::uint32_t crc32(std::string_view bytes) noexcept;

}  // namespace pidlock::detail

#endif  // PIDLOCK_CORE_CRC32_HPP
