{
  "targets": [
    {
      "target_name": "remora_native",
      "sources": ["src/original_dst.cc", "src/tcp_forwarder.cc", "src/memory_release.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "cflags_cc": ["-Wall", "-Wextra", "-O2", "-std=c++17", "-pthread"],
      "libraries": ["-pthread"],
      "conditions": [["OS!='linux'", {"sources!": ["src/original_dst.cc", "src/tcp_forwarder.cc", "src/memory_release.cc"]}]]
    }
  ]
}
