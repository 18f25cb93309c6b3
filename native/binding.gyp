# Builds the libvirt addon during `npm ci` (package.json "install" script). Headers come from
# npm_config_nodedir (the provisioned Node), never from the network.
{
  "targets": [
    {
      "target_name": "vmsnap_libvirt",
      "sources": ["src/addon.cc", "src/bridge.cc", "src/pool.cc", "src/connection.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      # The sources use C++20 (std::erase); said here rather than left to the headers' defaults.
      "cflags_cc": ["-std=gnu++20", "<!@(pkg-config --cflags libvirt libvirt-qemu)"],
      "libraries": ["<!@(pkg-config --libs libvirt libvirt-qemu)"]
    },
    {
      # librbd by snapshot id (restore of a group snapshot to a new image); needs librbd-dev and
      # librados-dev, which ship no pkg-config files. A separate module, so libvirt-only code
      # never loads librbd.
      "target_name": "vmsnap_rbd",
      "sources": ["src/rbd-copy.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=gnu++20"],
      "libraries": ["-lrbd", "-lrados"]
    }
  ]
}
