#include "pipeline/spm_api.h"

#include <dlfcn.h>
#include <glog/logging.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace steerlm {
namespace {

// Where the shim may be: $STEERLM_SPM_SHIM, the build's own path, then ../lib next to the binary.
std::vector<std::string> shim_candidates() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("STEERLM_SPM_SHIM")) paths.push_back(env);
  paths.push_back(STEERLM_SPM_SHIM_PATH);
  std::error_code error;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) paths.push_back((exe.parent_path() / "../lib/libsteerlm_spm_shim.so").string());
  return paths;
}

const SpmApi* load_shim() {
  std::string errors;
  for (const std::string& path : shim_candidates()) {
    // DEEPBIND: SentencePiece must resolve protobuf symbols to its own copy, not the system's.
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
    if (!handle) {
      errors += std::string("\n  ") + dlerror();
      continue;
    }
    using Entry = const SpmApi* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "steerlm_spm_api"));
    CHECK(entry) << path << " has no steerlm_spm_api";
    const SpmApi* api = entry();
    CHECK_EQ(api->version, kSpmApiVersion) << path << " is from another steerlm build";
    return api;
  }
  LOG(FATAL) << "cannot load the SentencePiece shim libsteerlm_spm_shim.so (rebuild steerlm, or "
                "set STEERLM_SPM_SHIM to its path):"
             << errors;
  return nullptr;
}

}  // namespace

const SpmApi& spm_api() {
  static const SpmApi* api = load_shim();
  return *api;
}

}  // namespace steerlm
