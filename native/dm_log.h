// Capturing libdevmapper's log.
//
// libdevmapper reports only success or failure; the reason is in the
// messages it logs through the dm_log_with_errno callback. A DmSession
// holds the process-wide libdevmapper lock (the library is not thread-safe)
// and collects every message logged while it is held, so the worker that
// owns the session can turn them into an errno and hand them to the
// JavaScript logger afterwards.
#ifndef DMTHIN_DM_LOG_H_
#define DMTHIN_DM_LOG_H_

#include <mutex>
#include <string>
#include <vector>

namespace dmthin {

struct DmLogEntry {
  int level;    // syslog-style: 3 error, 4 warning, ... 7 debug
  int err;      // errno the library attached to the message, or 0
  std::string message;
};

// InstallDmLog registers the callback. Call once, from module init.
void InstallDmLog();

// SetDmLogLevel sets the most verbose level that is captured (2..7).
void SetDmLogLevel(int level);
int DmLogLevel();

class DmSession {
 public:
  explicit DmSession(std::vector<DmLogEntry>* sink);
  ~DmSession();
  DmSession(const DmSession&) = delete;
  DmSession& operator=(const DmSession&) = delete;

 private:
  std::lock_guard<std::mutex> lock_;
};

// ErrnoFromLog finds the errno of the last error logged from index `from`
// on: the errno the library attached, else one read from the message text.
int ErrnoFromLog(const std::vector<DmLogEntry>& log, size_t from);

// LastErrorLine returns the last error-level message from index `from` on.
std::string LastErrorLine(const std::vector<DmLogEntry>& log, size_t from);

}  // namespace dmthin

#endif  // DMTHIN_DM_LOG_H_
