// dmthin native addon: libdevmapper and the Linux calls Node cannot make.
// Nothing here knows about Docker; policy lives in src/.
#include <napi.h>

#include "addon.h"
#include "dm_log.h"

namespace dmthin {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  InstallDmLog();

  // One namespace object per family: dm, blockdev, loop, fs, scan, apply.
  auto add = [&](const char* name, void (*init)(Napi::Env, Napi::Object)) {
    Napi::Object family = Napi::Object::New(env);
    init(env, family);
    exports.Set(name, family);
  };
  add("dm", InitDm);
  add("blockdev", InitBlockdev);
  add("loop", InitLoop);
  add("fs", InitFsops);
  add("scan", InitScan);
  add("apply", InitApplyOps);
  return exports;
}

}  // namespace dmthin

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return dmthin::Init(env, exports); }

NODE_API_MODULE(dmthin, InitAddon)
