#!/usr/bin/env bash
# The GPU check of bench/BENCH.md ("GPU"), as one script for a lent GPU machine with no
# registry access (pack its inputs first with bench/gpu_pack.sh). Prints the adapter, then
# times through Deno's WebGPU: the generator step and the student step at the default and the
# published sizes, then a whole default run, each under its own time limit. Logs go to
# ${OUT:-/tmp/gpu_out}. ONLY_MATMUL=1 times tfjs-webgpu's matMul alone instead; PROFILE=1
# prints the kernel profile of the two published-size steps (bench/gpu_profile.ts) instead;
# TRANSFER=1 the host <-> GPU transfer rates (bench/gpu_transfer.ts); QUICK=1 stops after the
# four steps and the transfer rates.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1
if [ -z "${NO_GL:-}" ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
export DENO_NO_UPDATE_CHECK=1
nvidia-smi -L || true
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>&1
xz -dc .device/deno.xz >/tmp/deno && chmod +x /tmp/deno
tar -xJf .device/denodir.tar.xz -C /tmp
export DENO_DIR=/tmp/gdeno
D="/tmp/deno run -A --cached-only"
probe='const a = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
const i = a?.info;
console.log("adapter:", JSON.stringify(a ? { description: i.description, vendor: i.vendor,
  architecture: i.architecture, fallback: i.isFallbackAdapter,
  maxBufferSize: a.limits.maxBufferSize,
  maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize } : null));'
/tmp/deno eval "$probe" | tee /tmp/probe
if ! grep -q '"fallback":false' /tmp/probe; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  /tmp/deno eval "$probe" | tee /tmp/probe
fi
if ! grep -q '"fallback":false' /tmp/probe; then
  echo "no hardware WebGPU adapter: nothing timed"
  exit 3
fi
step() {
  echo "== $1"
  shift
  if [ -x /usr/bin/time ]; then /usr/bin/time -f "peak RSS %M KB, %e s" timeout "$@"; else
    timeout "$@"
  fi
}
if [ -n "${TRANSFER:-}" ]; then
  step "host <-> GPU transfer, 200 MB" 60 $D bench/gpu_transfer.ts 200
  step "generator step profile, default size" 40 $D bench/gpu_profile.ts generator webgpu 16 256 128
  exit
fi
if [ -n "${PROFILE:-}" ]; then
  step "generator step profile, published size" 100 $D bench/gpu_profile.ts generator webgpu 16 750 2048
  step "student step profile, published size" 120 $D bench/gpu_profile.ts student webgpu 8 2304 2048
  exit
fi
if [ -n "${ONLY_MATMUL:-}" ]; then
  step "matMul alone" 90 $D bench/gpu_matmul.ts
  exit
fi
step "generator step, published size" 60 $D bench/generation_bench.ts step --backend webgpu \
  --size paper --steps 4 --results "$OUT/gen.jsonl"
step "student step, published size, batch 8 x 2304" 80 $D bench/student_step_bench.ts \
  --steps 3 --one '{"backend":"webgpu","size":"paper","B":8,"t0":2304}'
step "generator step, default size" 25 $D bench/generation_bench.ts step --backend webgpu \
  --size default --steps 6 --results "$OUT/gen.jsonl"
step "student step, default size" 30 $D bench/student_step_bench.ts --steps 4 \
  --one '{"backend":"webgpu","size":"default","B":8,"t0":576}'
step "host <-> GPU transfer, 200 MB" 30 $D bench/gpu_transfer.ts 200
[ -n "${QUICK:-}" ] && exit
step "matMul alone" 60 $D bench/gpu_matmul.ts
step "whole default run" "${RUN_LIMIT:-90}" $D mod.ts --backend webgpu --out /tmp/gpu_run
cp /tmp/gpu_run/metrics.json "$OUT/run_metrics.json" 2>/dev/null
echo "== done"
