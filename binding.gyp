{
  "targets": [
    {
      "target_name": "connito_sys",
      "sources": ["native/addon/sys_addon.cc", "native/cpu/sd_notify.c"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "connito_native",
      "sources": ["<!@(node -e \"const fs=require('fs');for(const d of ['native/cpu','native/addon'])for(const f of fs.readdirSync(d))if(f.endsWith('.cc')&&(d!=='native/addon'||f.startsWith('engine_')))console.log(d+'/'+f)\")"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/include"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fno-math-errno", "-fopenmp"],
      "cflags_cc!": ["-fno-exceptions"],
      "ldflags": ["-fopenmp"]
    }
  ]
}
