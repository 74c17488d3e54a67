// The C API's verdicts and records: inspect, break_stale, and read-only
// accessors of Inspection and HolderRecord.
#include "c_api/objects.hpp"

using namespace pidlock;
using pidlock::c_api::call;
using pidlock::c_api::null_argument;

// The C enums are the C++ ones with their values spelled out; a change on
// either side breaks the build here.
static_assert(PIDLOCK_FREE == static_cast<int>(Verdict::kFree) && PIDLOCK_HELD == static_cast<int>(Verdict::kHeld) &&
              PIDLOCK_STALE == static_cast<int>(Verdict::kStale) &&
              PIDLOCK_UNKNOWN == static_cast<int>(Verdict::kUnknown));
static_assert(PIDLOCK_REASON_NO_LOCK_FILE == static_cast<int>(Reason::kNoLockFile));
static_assert(PIDLOCK_REASON_KERNEL_LOCK_FREE == static_cast<int>(Reason::kKernelLockFree));
static_assert(PIDLOCK_REASON_ZOMBIE == static_cast<int>(Reason::kZombie));
static_assert(PIDLOCK_REASON_PID_REUSED == static_cast<int>(Reason::kPidReused));
static_assert(PIDLOCK_REASON_OTHER_BOOT == static_cast<int>(Reason::kOtherBoot));
static_assert(PIDLOCK_REASON_NOT_A_LOCK_RECORD == static_cast<int>(Reason::kNotALockRecord));
static_assert(PIDLOCK_REASON_SOCKET_LISTENING == static_cast<int>(Reason::kSocketListening));
static_assert(PIDLOCK_REASON_LEASE_ALIVE == static_cast<int>(Reason::kLeaseAlive));

pidlock_record::pidlock_record(HolderRecord record)
    : value(std::move(record)), port(value.port ? std::to_string(*value.port) : std::string()) {}

pidlock_inspection::pidlock_inspection(Inspection inspection) : value(std::move(inspection)) {
  if (value.holder) record.emplace(*value.holder);
}

extern "C" {

int pidlock_inspect(const char* path, const pidlock_judge_options* options, pidlock_inspection** inspection,
                    pidlock_error* err) {
  return call(err, [&] {
    if (path == nullptr || inspection == nullptr) return null_argument(err, "pidlock_inspect");
    *inspection = nullptr;
    *inspection = new pidlock_inspection(c_api::manager().inspect(path, c_api::judge_options(options)));
    return 0;
  });
}

int pidlock_break_stale(const char* path, const pidlock_judge_options* options, int* removed,
                        pidlock_inspection** inspection, pidlock_error* err) {
  return call(err, [&] {
    if (removed != nullptr) *removed = 0;
    if (inspection != nullptr) *inspection = nullptr;
    if (path == nullptr) return null_argument(err, "pidlock_break_stale");
    BreakResult result = c_api::manager().break_stale(path, c_api::judge_options(options));
    if (removed != nullptr) *removed = result.removed ? 1 : 0;
    if (inspection != nullptr) *inspection = new pidlock_inspection(std::move(result.inspection));
    return 0;
  });
}

pidlock_verdict pidlock_inspection_verdict(const pidlock_inspection* inspection) {
  return static_cast<pidlock_verdict>(inspection->value.verdict);
}
pidlock_reason pidlock_inspection_reason(const pidlock_inspection* inspection) {
  return static_cast<pidlock_reason>(inspection->value.reason);
}
const char* pidlock_inspection_detail(const pidlock_inspection* inspection) {
  return inspection->value.detail.c_str();
}
int pidlock_inspection_kernel_lock_evidence(const pidlock_inspection* inspection) {
  return inspection->value.kernel_lock_evidence ? 1 : 0;
}
const pidlock_record* pidlock_inspection_record(const pidlock_inspection* inspection) {
  return inspection->record ? &*inspection->record : nullptr;
}
void pidlock_inspection_free(pidlock_inspection* inspection) { delete inspection; }

const char* pidlock_verdict_name(pidlock_verdict verdict) { return to_string(static_cast<Verdict>(verdict)); }
const char* pidlock_reason_name(pidlock_reason reason) { return to_string(static_cast<Reason>(reason)); }

pid_t pidlock_record_pid(const pidlock_record* record) {
  return record->value.single_user ? -record->value.pid : record->value.pid;
}
const char* pidlock_record_data_directory(const pidlock_record* record) {
  return record->value.data_directory.c_str();
}
int64_t pidlock_record_start_time(const pidlock_record* record) { return record->value.start_time; }
const char* pidlock_record_format(const pidlock_record* record) { return to_string(record->value.format); }
const char* pidlock_record_status(const pidlock_record* record) { return record->value.status.c_str(); }
const char* pidlock_record_host(const pidlock_record* record) { return record->value.host.c_str(); }
const char* pidlock_record_boot_id(const pidlock_record* record) { return record->value.boot_id.c_str(); }

const char* pidlock_record_line(const pidlock_record* record, unsigned line) {
  const HolderRecord& r = record->value;
  if (line < 4 || line > 3 + kMaxApplicationLines) return nullptr;
  if (r.format == RecordFormat::kPidlock)
    return line - 4 < r.application_lines.size() ? r.application_lines[line - 4].c_str() : nullptr;
  if (r.format != RecordFormat::kPostgresql) return nullptr;
  switch (line) {
    case 4: return r.port ? record->port.c_str() : nullptr;
    case 5: return r.socket_directory.c_str();
    case 6: return r.listen_address.c_str();
    case 7: return r.shared_memory_key.c_str();
    default: return r.status.c_str();
  }
}

void pidlock_record_free(pidlock_record* record) { delete record; }

}  // extern "C"
