#!/bin/sh
# Installs what npm does not provide for the independent references: Debian's PyTorch (python3-torch,
# which brings numpy) for `npm run bench`'s neural-network reference (bench/torch_step.py), the gradient
# checks against PyTorch (src/models/nn/gradcheck.test.ts) and numpy reading model.safetensors; .ci/run calls
# it. Idempotent: exits at once when /usr/bin/python3 can already import torch.
set -eu

PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import torch' 2>/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-bench-deps: apt-get not found: install PyTorch for $PY by hand (Debian/Ubuntu: apt-get install python3-torch)" >&2
  exit 1
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-bench-deps: not root and no sudo: run 'apt-get install -y python3-torch' as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when apt does not know the package yet.
if ! apt-cache show python3-torch >/dev/null 2>&1; then
  $SUDO apt-get update
fi
$SUDO apt-get install -y --no-install-recommends python3-torch
"$PY" -c 'import torch' || { echo "install-bench-deps: python3-torch installed but '$PY -c \"import torch\"' still fails" >&2; exit 1; }
