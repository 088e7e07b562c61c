// dmthin native addon: libdevmapper and the Linux calls Node cannot make.
// Nothing here knows about Docker; policy lives in src/.
#include <napi.h>

#include "addon.h"
#include "dm_log.h"

namespace dmthin {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  InstallDmLog();

  Napi::Object dm = Napi::Object::New(env);
  InitDm(env, dm);
  exports.Set("dm", dm);

  Napi::Object blockdev = Napi::Object::New(env);
  InitBlockdev(env, blockdev);
  exports.Set("blockdev", blockdev);

  Napi::Object loop = Napi::Object::New(env);
  InitLoop(env, loop);
  exports.Set("loop", loop);

  Napi::Object fs = Napi::Object::New(env);
  InitFsops(env, fs);
  exports.Set("fs", fs);
  return exports;
}

}  // namespace dmthin

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return dmthin::Init(env, exports); }

NODE_API_MODULE(dmthin, InitAddon)
