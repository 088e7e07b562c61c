#include "dm_log.h"

#include <libdevmapper.h>
#include <stdarg.h>
#include <stdio.h>

#include <atomic>

#include "errors.h"

namespace dmthin {

namespace {

constexpr int kLevelError = 3;

std::mutex g_dm_mutex;
std::atomic<int> g_level{4};
// Set by the DmSession of the calling thread: libdevmapper calls the log
// callback on the thread that runs the task, and messages logged on threads
// without a session (there should be none) are dropped.
thread_local std::vector<DmLogEntry>* g_sink = nullptr;

extern "C" void DmLogCallback(int level, const char* file, int line, int dm_errno_or_class,
                              const char* format, ...) {
  level &= 7;  // strip libdevmapper's flag bits (stderr, once)
  // Errors are always kept: they carry the errno a failed call is reported with.
  if (g_sink == nullptr || (level > g_level.load() && level > kLevelError)) return;
  char buffer[1024];
  va_list ap;
  va_start(ap, format);
  vsnprintf(buffer, sizeof(buffer), format, ap);
  va_end(ap);
  // For messages below error level the number is a debug class, not an errno.
  int err = (level <= kLevelError && dm_errno_or_class > 0) ? dm_errno_or_class : 0;
  g_sink->push_back(DmLogEntry{level, err, buffer});
}

}  // namespace

void InstallDmLog() { dm_log_with_errno_init(DmLogCallback); }

void SetDmLogLevel(int level) { g_level.store(level); }
int DmLogLevel() { return g_level.load(); }

DmSession::DmSession(std::vector<DmLogEntry>* sink) : lock_(g_dm_mutex) { g_sink = sink; }
DmSession::~DmSession() { g_sink = nullptr; }

int ErrnoFromLog(const std::vector<DmLogEntry>& log, size_t from) {
  for (size_t i = log.size(); i > from; i--) {
    const DmLogEntry& entry = log[i - 1];
    if (entry.level > kLevelError) continue;
    if (entry.err > 0) return entry.err;
    int err = ErrnoFromText(entry.message);
    if (err > 0) return err;
  }
  return 0;
}

std::string LastErrorLine(const std::vector<DmLogEntry>& log, size_t from) {
  for (size_t i = log.size(); i > from; i--) {
    if (log[i - 1].level <= kLevelError) return log[i - 1].message;
  }
  return "";
}

}  // namespace dmthin
