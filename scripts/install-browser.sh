#!/bin/sh
# Installs Debian's chromium for the dashboard's browser tests (src/web/*.browser.test.ts drive it with
# puppeteer-core); .ci/run calls it before the tests. Idempotent: exits at once when a chromium is found
# (the one in CHROMIUM_PATH, or chromium / chromium-browser on the PATH).
set -eu

if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then exit 0; fi
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: apt-get not found: install Chromium by hand and set CHROMIUM_PATH to its executable" >&2
  exit 1
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "install-browser: not root and no sudo: run 'apt-get update && apt-get install -y chromium' as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium
command -v chromium >/dev/null 2>&1 || { echo "install-browser: chromium installed but not on the PATH" >&2; exit 1; }
