// Certificates for the TLS tests, made on the spot with openssl(1) (from
// Debian's openssl package): a CA, a server certificate for 127.0.0.1 and
// localhost (usable as a client certificate too: etcd's gateway presents
// the server's own certificate to its gRPC side), a client certificate,
// and an unrelated CA that must not be trusted.
#ifndef PIDLOCK_TESTS_ETCD_CERTIFICATES_HPP
#define PIDLOCK_TESTS_ETCD_CERTIFICATES_HPP

#include <string>

namespace pidlock_etcd_test {

// Writes ca.pem, server.pem, server-key.pem, client.pem, client-key.pem and
// other-ca.pem into `dir` (which must exist). False with *problem (openssl's
// output) on failure.
bool make_certificates(const std::string& dir, std::string* problem);

}  // namespace pidlock_etcd_test

#endif  // PIDLOCK_TESTS_ETCD_CERTIFICATES_HPP
