#!/usr/bin/env bash
# Packs what bench/gpu_check.sh needs on a GPU machine that cannot reach any registry:
# the Deno binary (xz), a Deno cache holding only the npm packages the toolkit imports (source
# maps, type declarations and the minified/ES2017/FESM builds removed), and the Vulkan/EGL loader
# packages from Debian. Everything goes to the ignored folders .device/ and .gl/.
set -euo pipefail
cd "$(dirname "$0")/.."
DENO=${DENO:-$(command -v deno || true)}
if [ -z "$DENO" ]; then
  npx -y deno@2.9.6 --version >/dev/null
  DENO=$(find "$HOME/.npm/_npx" -path '*linux-x64-glibc/deno' -type f | head -1)
fi
mkdir -p .device .gl
xz -T2 -6 -c "$DENO" >.device/deno.xz
cache=$(mktemp -d)/gdeno
DENO_DIR=$cache "$DENO" cache mod.ts bench/student_step_bench.ts bench/generation_bench.ts
DENO_DIR=$cache "$DENO" eval 'await import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0"); await import("npm:@tensorflow/tfjs-backend-wasm@4.22.0");'
find "$cache/npm" \( -name '*.map' -o -name '*.d.ts' -o -name '*.min.js' -o -name '*.es2017.js' \
  -o -name '*.fesm.js' -o -name '*.externs.js' \) -delete
tar -C "$(dirname "$cache")" -cf - gdeno | xz -T2 -6 >.device/denodir.tar.xz
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
mkdir -p /tmp/amd64/partial
# shellcheck disable=SC2086
apt-get $o update >/dev/null
# shellcheck disable=SC2086
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .device .gl
