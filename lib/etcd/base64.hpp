// Base64 (RFC 4648, standard alphabet, padded), as etcd's JSON gateway
// encodes every key and value (protobuf `bytes` fields in JSON).
#ifndef PIDLOCK_ETCD_BASE64_HPP
#define PIDLOCK_ETCD_BASE64_HPP

#include <optional>
#include <string>
#include <string_view>

namespace pidlock::detail::etcd {

std::string base64_encode(std::string_view bytes);
// nullopt for anything that is not canonical padded base64.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace pidlock::detail::etcd

#endif  // PIDLOCK_ETCD_BASE64_HPP
