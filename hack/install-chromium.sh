#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard's browser test
# (cmd/ferry/dashboard_browser_test.go) when it is missing; `make test` runs it, and so
# does the test. Idempotent: an installed chromium is left alone and the script returns at
# once. A cold install (apt-get update, chromium and 24 libraries, recommends left out)
# took 11-16 s on this machine kind.
#
# CHROMIUM overrides the path looked for (default /usr/bin/chromium). Installing needs
# root (CI runs as root) or sudo without a password; otherwise the script says what to run.
set -euo pipefail
bin=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$bin" ]; then
  echo "chromium: $bin: installed"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "chromium: $bin missing and not root: run 'sudo apt-get install -y chromium' (Debian), then retry" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "chromium: $bin missing and no apt-get: install Chromium and set CHROMIUM to its path" >&2
  exit 1
fi

echo "chromium: installing with apt-get"
start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Recommends (mesa's DRI drivers, upower, the setuid sandbox) are not needed headless
# with --disable-gpu --no-sandbox; leaving them out halves the download.
if ! { "${sudo[@]}" apt-get update -q && "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "chromium: apt-get install chromium failed (output above); install it by hand or set CHROMIUM" >&2
  exit 1
fi
if [ ! -x "$bin" ]; then
  echo "chromium: apt-get install chromium succeeded but $bin does not exist" >&2
  exit 1
fi
echo "chromium: installed $("$bin" --version 2>/dev/null || echo "$bin") in $((SECONDS - start))s"
