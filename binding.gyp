{
  "targets": [
    {
      "target_name": "dmthin",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/args.cc",
        "native/dm_log.cc",
        "native/dm.cc",
        "native/blockdev.cc",
        "native/loop.cc",
        "native/fsops.cc",
        "native/scan.cc",
        "native/applyops.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "include_dirs": [
        "<!@(pkg-config --cflags-only-I devmapper | sed s/-I//g)"
      ],
      "libraries": [
        "<!@(pkg-config --libs devmapper)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "_GNU_SOURCE"
      ],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
