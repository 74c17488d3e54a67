#include "inspection_output.hpp"

#include "json_writer.hpp"

#include <ctime>

namespace pidlock::cli {

namespace {

void add_line(std::string& out, const char* label, const std::string& value) {
  out += "  ";
  out += label;
  out += ':';
  for (std::size_t n = std::string(label).size() + 1; n < 22; ++n) out += ' ';
  out += value;
  out += '\n';
}

// Control characters in a record (a garbage file, say) would garble the
// terminal; show them escaped.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Whether the recorded holder is among the processes holding the kernel
// lock; if not, they inherited it (from the recorded pid, or from a
// `pidlock run` job that has exited).
bool recorded_among(const Inspection& in, const std::vector<LockHolder>& holders) {
  for (const LockHolder& h : holders)
    if (in.holder && h.pid == in.holder->pid) return true;
  return false;
}

}  // namespace

std::string format_time(std::int64_t epoch_seconds) {
  std::time_t t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm {};
  char buf[64];
  if (!gmtime_r(&t, &tm) || std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
    return std::to_string(epoch_seconds);
  return buf;
}

std::string holder_summary(const Inspection& inspection) {
  if (!inspection.holder) return {};
  const HolderRecord& r = *inspection.holder;
  std::string out = "pid " + std::to_string(r.pid);
  if (r.start_time > 0) out += ", started " + format_time(r.start_time);
  if (!r.data_directory.empty()) out += ", data directory " + printable(r.data_directory);
  if (!r.host.empty()) out += ", host " + printable(r.host);
  if (r.port) out += ", port " + std::to_string(*r.port);
  if (!r.status.empty()) out += ", status " + printable(r.status);
  return out;
}

std::string describe_inspection(const std::string& path, const Inspection& in,
                                const std::vector<LockHolder>* holders) {
  std::string out = printable(path) + ": " + to_string(in.verdict);
  if (!in.detail.empty()) out += " (" + printable(in.detail) + ")";
  out += '\n';
  add_line(out, "reason", to_string(in.reason));
  if (in.holder) {
    const HolderRecord& r = *in.holder;
    add_line(out, "pid", std::to_string(r.pid) +
                             (r.single_user ? " (PostgreSQL single-user backend)" : ""));
    if (r.start_time > 0)
      add_line(out, "started", format_time(r.start_time) + " (" + std::to_string(r.start_time) + ")");
    if (!r.data_directory.empty()) add_line(out, "data directory", printable(r.data_directory));
    if (!r.host.empty()) add_line(out, "host", printable(r.host));
    if (!r.label.empty()) add_line(out, "line 2", printable(r.label) + " (a host or program name)");
    if (!r.status.empty()) add_line(out, "status", printable(r.status));
    std::string format = to_string(r.format);
    if (r.format == RecordFormat::kPidlock) format += " (version " + std::to_string(r.format_version) + ")";
    add_line(out, "format", format);
    if (r.port) add_line(out, "port", std::to_string(*r.port));
    if (!r.socket_directory.empty()) add_line(out, "socket directory", printable(r.socket_directory));
    if (!r.listen_address.empty()) add_line(out, "listen address", printable(r.listen_address));
    if (!r.shared_memory_key.empty()) add_line(out, "shared memory key", printable(r.shared_memory_key));
    if (!r.boot_id.empty()) add_line(out, "boot id", printable(r.boot_id));
    if (r.pid_namespace) add_line(out, "pid namespace", std::to_string(*r.pid_namespace));
    if (r.process_start_ticks) add_line(out, "process start ticks", std::to_string(*r.process_start_ticks));
    for (const auto& [key, value] : r.unknown_fields) add_line(out, printable(key).c_str(), printable(value));
  }
  if (in.lease) {
    add_line(out, "lease", std::to_string(in.lease->lease_id) + " (" + std::to_string(in.lease->ttl_seconds) +
                               " s left, fencing token " + std::to_string(in.lease->fencing_token) + ")");
  }
  if (in.verdict != Verdict::kFree)
    add_line(out, "kernel lock evidence", in.kernel_lock_evidence ? "yes" : "no");
  if (holders && !holders->empty()) {
    std::string who = printable(describe(*holders));
    if (in.holder && !recorded_among(in, *holders))
      who += "; not the recorded pid " + std::to_string(in.holder->pid) + ": inherited the lock";
    add_line(out, "kernel lock held by", who);
  }
  return out;
}

namespace {

// {"KEY": "VALUE", ...} of the fields pidlock does not know, or null.
void add_unknown_fields(JsonObject& json, const HolderRecord* r) {
  if (!r || r->unknown_fields.empty()) {
    json.add_null("unknown_fields");
    return;
  }
  JsonObject fields;
  for (const auto& [key, value] : r->unknown_fields) fields.add_string(key, value);
  json.add_raw("unknown_fields", fields.str());
}

// [{"pid": N, "command": "..."}, ...] of the processes holding the kernel
// lock, or null.
void add_kernel_lock_holders(JsonObject& json, const std::vector<LockHolder>* holders) {
  if (!holders || holders->empty()) {
    json.add_null("kernel_lock_holders");
    return;
  }
  std::string list = "[";
  for (const LockHolder& h : *holders) {
    if (list.size() > 1) list += ',';
    list += JsonObject().add_integer("pid", h.pid).add_string("command", h.command).str();
  }
  json.add_raw("kernel_lock_holders", list + "]");
}

}  // namespace

std::string inspection_json(const std::string& path, const Inspection& in,
                            const std::vector<LockHolder>* holders) {
  JsonObject json;
  json.add_string("path", path)
      .add_string("state", to_string(in.verdict))
      .add_string("reason", to_string(in.reason))
      .add_string("detail", in.detail)
      .add_bool("kernel_lock_evidence", in.kernel_lock_evidence);
  const HolderRecord* r = in.holder ? &*in.holder : nullptr;
  auto string_or_null = [&](const char* key, const std::string* value) {
    if (value && !value->empty())
      json.add_string(key, *value);
    else
      json.add_null(key);
  };
  auto integer_or_null = [&](const char* key, bool present, std::int64_t value) {
    if (present)
      json.add_integer(key, value);
    else
      json.add_null(key);
  };
  if (r) {
    json.add_string("format", to_string(r->format));
    json.add_integer("pid", r->pid);
    json.add_bool("single_user", r->single_user);
  } else {
    json.add_null("format").add_null("pid").add_null("single_user");
  }
  integer_or_null("start_time", r && r->start_time > 0, r ? r->start_time : 0);
  string_or_null("data_dir", r ? &r->data_directory : nullptr);
  string_or_null("host", r ? &r->host : nullptr);
  // Line 2 of a plain pid file: a host or a program name.
  string_or_null("label", r ? &r->label : nullptr);
  string_or_null("status", r ? &r->status : nullptr);
  integer_or_null("format_version", r && r->format == RecordFormat::kPidlock, r ? r->format_version : 0);
  string_or_null("boot_id", r ? &r->boot_id : nullptr);
  integer_or_null("pid_namespace", r && r->pid_namespace,
                  r && r->pid_namespace ? static_cast<std::int64_t>(*r->pid_namespace) : 0);
  integer_or_null("process_start_ticks", r && r->process_start_ticks,
                  r && r->process_start_ticks ? static_cast<std::int64_t>(*r->process_start_ticks) : 0);
  // Locks in a lease-based store (etcd://): the lease, its time left and the
  // fencing token; null for lock files. The two 64-bit ids are strings, as
  // etcd's own JSON writes them: JavaScript and jq read numbers as doubles,
  // which lose lease ids above 2^53.
  if (in.lease) {
    json.add_string("lease", std::to_string(in.lease->lease_id))
        .add_integer("ttl", in.lease->ttl_seconds)
        .add_string("fencing_token", std::to_string(in.lease->fencing_token));
  } else {
    json.add_null("lease").add_null("ttl").add_null("fencing_token");
  }
  integer_or_null("port", r && r->port, r && r->port ? *r->port : 0);
  string_or_null("socket_dir", r ? &r->socket_directory : nullptr);
  string_or_null("listen_address", r ? &r->listen_address : nullptr);
  string_or_null("shared_memory_key", r ? &r->shared_memory_key : nullptr);
  add_unknown_fields(json, r);
  add_kernel_lock_holders(json, holders);
  return json.str();
}

std::string inheritors_note(const std::string& path, const Inspection& in) {
  if (in.reason != Reason::kKernelLockHeld || !in.holder) return {};
  std::vector<LockHolder> holders = kernel_lock_holders(path);
  if (holders.empty() || recorded_among(in, holders)) return {};
  return " (held by " + printable(describe(holders)) + ", which inherited the lock)";
}

std::string error_json(const std::string& path, const std::string& error) {
  JsonObject json;
  json.add_string("path", path)
      .add_string("state", "unknown")
      .add_string("reason", "error")
      .add_string("detail", error)
      .add_string("error", error);
  return json.str();
}

}  // namespace pidlock::cli
