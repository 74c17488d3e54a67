#include "certificates.hpp"

#include "support/child.hpp"
#include "support/files.hpp"

namespace pidlock_etcd_test {

using namespace pidlock_test;

bool make_certificates(const std::string& dir, std::string* problem) {
  // P-256 keys: quick to make, and Go's TLS and OpenSSL both take them.
  const std::string script =
      "set -e\n"
      "cd '" + dir + "'\n"
      "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1\" 2>/dev/null; }\n"
      "key ca-key.pem\n"
      "openssl req -x509 -new -key ca-key.pem -out ca.pem -days 2 -subj /CN=pidlock-test-ca\n"
      "key other-ca-key.pem\n"
      "openssl req -x509 -new -key other-ca-key.pem -out other-ca.pem -days 2 -subj /CN=pidlock-other-ca\n"
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext\n"
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
      "key server-key.pem\n"
      "openssl req -new -key server-key.pem -out server.csr -subj /CN=etcd\n"
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server.pem -days 2 "
      "-extfile server.ext 2>/dev/null\n"
      "key client-key.pem\n"
      "openssl req -new -key client-key.pem -out client.csr -subj /CN=pidlock-client\n"
      "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out client.pem -days 2 "
      "-extfile client.ext 2>/dev/null\n";
  const std::string script_path = dir + "/make.sh";
  write_file(script_path, script, 0600);
  Outcome o = Child::spawn({"sh", script_path}, Stdio::captured_in(dir)).finish(std::chrono::seconds(60));
  if (!o.exited || o.code != 0) {
    *problem = "openssl failed (is the openssl package installed?):\n" + o.out + o.err;
    return false;
  }
  return true;
}

}  // namespace pidlock_etcd_test
