#!/usr/bin/env bash
# make test checks and unit-tests the Prometheus alert rules (deploy/prometheus/) with
# promtool, which Debian's prometheus package provides. Install it when it is missing; as a
# non-root user, say how and fail. The package's own service is not needed (nothing here
# starts it).
set -euo pipefail
if [ -x /usr/bin/promtool ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-promtool: /usr/bin/promtool is missing; run 'apt-get install prometheus' as root" >&2
  exit 1
fi
echo "ensure-promtool: installing prometheus (for promtool) from Debian's packages" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
/usr/bin/promtool --version >&2
