// Node-style system errors built from an errno, on the main thread.
#ifndef DMTHIN_ERRORS_H_
#define DMTHIN_ERRORS_H_

#include <napi.h>

#include <string>

namespace dmthin {

// What a failed call on a worker thread leaves behind for the main thread.
struct Failure {
  int err = 0;           // positive errno
  std::string syscall;   // e.g. "ioctl(LOOP_SET_FD)" or "dm_task_run(remove)"
  std::string path;      // the file, device or dm name the call was about
  std::string detail;    // extra text, e.g. the libdevmapper error line
};

// ErrnoName returns "EBUSY" for EBUSY, or "E<n>" when the name is unknown.
std::string ErrnoName(int err);

// ErrnoDescription returns strerror(err) with a lower-case first letter,
// as Node prints it ("device or resource busy").
std::string ErrnoDescription(int err);

// ErrnoFromText finds an errno whose strerror text ends the message
// (libdevmapper prints "...failed: Device or resource busy"); 0 if none.
int ErrnoFromText(const std::string& message);

// SystemError builds an Error shaped like Node's own: message
// "EBUSY: device or resource busy, <syscall> '<path>'" plus code, errno
// (negative, as Node's), syscall and path properties.
Napi::Error SystemError(Napi::Env env, const Failure& failure);

}  // namespace dmthin

#endif  // DMTHIN_ERRORS_H_
