#!/usr/bin/env bash
# The browser tests drive Debian's chromium (headless) through Playwright. Install it from
# Debian's packages when it is missing; as a non-root user, say how and fail.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-chromium: /usr/bin/chromium is missing; run 'apt-get install chromium' as root" >&2
  exit 1
fi
echo "ensure-chromium: installing chromium from Debian's packages" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version >&2
