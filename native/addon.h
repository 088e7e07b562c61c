// Per-environment state of the addon and the Init functions of each part.
#ifndef DMTHIN_ADDON_H_
#define DMTHIN_ADDON_H_

#include <napi.h>

namespace dmthin {

struct AddonData {
  // Receives libdevmapper's log: logger(level, message, code).
  Napi::FunctionReference dm_logger;
};

inline AddonData* GetAddonData(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

void InitDm(Napi::Env env, Napi::Object exports);
void InitBlockdev(Napi::Env env, Napi::Object exports);
void InitLoop(Napi::Env env, Napi::Object exports);
void InitFsops(Napi::Env env, Napi::Object exports);
void InitScan(Napi::Env env, Napi::Object exports);
void InitApplyOps(Napi::Env env, Napi::Object exports);

}  // namespace dmthin

#endif  // DMTHIN_ADDON_H_
