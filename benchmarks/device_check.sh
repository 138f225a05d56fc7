#!/usr/bin/env bash
# GPU check for issue 12: renderer and streaming figures on a lent NVIDIA machine (the `device`
# tool), in one run under 8 minutes. Also runs here, against llvmpipe, with --allow-software.
#
#   device tool:  bash benchmarks/device_check.sh            (carry .whl and .gl, see below)
#   here:         bash benchmarks/device_check.sh --allow-software --quick
#
# The device machine has no network. Python packages the image lacks travel as wheels in .whl/
# and EGL's client libraries as Debian packages in .gl/ (both git-ignored via
# .git/info/exclude; the tool's README says how to fetch them); this script installs what it
# finds. Results go to $OUT (or var/device-check): renderer.txt, pipeline.json, summary.txt.
# Rendering must be on the NVIDIA device: the GL renderer string is asserted (not llvmpipe).
# H100/H200 have no NVENC: the encoder falls back to libx264 and says so in the figures.
set -uo pipefail
cd "$(dirname "$0")/.."
ALLOW_SOFTWARE=0; QUICK=0
for arg in "$@"; do
  case "$arg" in
    --allow-software) ALLOW_SOFTWARE=1 ;;
    --quick) QUICK=1 ;;
    *) echo "usage: $0 [--allow-software] [--quick]" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-var/device-check}"; mkdir -p "$OUT"
PY=python3; [ -x .venv/bin/python ] && PY=.venv/bin/python
if compgen -G ".gl/*.deb" >/dev/null; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
fi
if [ -d /usr/local/nvidia/share/glvnd/egl_vendor.d ]; then
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } \
  | tee "$OUT/summary.txt"

# 1. The GL renderer: the NVIDIA device through EGL, not Mesa's llvmpipe.
info=$("$PY" -c 'from workers.rendering.gl_context import renderer_info; print(renderer_info())') || {
  echo "device_check: no EGL context" | tee -a "$OUT/summary.txt"; exit 1; }
echo "GL renderer: $info" | tee -a "$OUT/summary.txt"
case "${info,,}" in
  *llvmpipe*|*softpipe*|*swrast*)
    if [ "$ALLOW_SOFTWARE" = 0 ]; then
      echo "device_check: software renderer, not the GPU (pass --allow-software to run anyway)" \
        | tee -a "$OUT/summary.txt"; exit 1
    fi ;;
esac

# 2. Renderer: stereo frame time per rung. 3. Streaming: decoded fps and pose->decoded latency
# through the real encoder and WebRTC stack, per rung, at 90 fps, governor on.
if [ "$QUICK" = 1 ]; then
  sizes=720p; rungs=720p; seconds=8; frames=6
else
  sizes=1080p,2K,4K; rungs=1080p,2K,4K; seconds=15; frames=40
fi
timeout 180 "$PY" benchmarks/bench_renderer.py --sizes "$sizes" --frames "$frames" \
  | tee "$OUT/renderer.txt"
timeout 300 "$PY" benchmarks/bench_pipeline.py --rungs "$rungs" --seconds "$seconds" --fps 90 \
  --json "$OUT/pipeline.json" 2>"$OUT/pipeline.log" | tee -a "$OUT/summary.txt"
status=${PIPESTATUS[0]}
echo "device_check: done (status $status); figures in $OUT" | tee -a "$OUT/summary.txt"
exit "$status"
