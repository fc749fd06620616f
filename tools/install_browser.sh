#!/usr/bin/env bash
# The headless browser of the console's page tests (test/test_console.py): Debian's chromium and
# chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver). Idempotent: does nothing when both are
# there; installs them with apt-get when run as root (or with sudo), else says how. Nothing is ever
# downloaded at test time (Selenium is given the driver's path).
set -euo pipefail

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "note: no apt-get: install Chromium and its chromedriver to run the console's browser tests (they are skipped)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "note: run 'sudo apt-get install chromium chromium-driver' for the console's browser tests (they are skipped)"
    exit 0
  fi
fi
echo "installing chromium and chromium-driver (the console's browser tests)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
