#!/usr/bin/env bash
# The scale-out tests (tests/scaleout) run django-q2 on Redis: Debian's redis-server, which
# each test starts on a free loopback port of its own (and stops, to prove an outage costs
# nothing). Install it from Debian's packages when it is missing; as a non-root user, say
# how and fail. The package's own service is not needed (nothing here starts it).
set -euo pipefail
if [ -x /usr/bin/redis-server ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-redis: /usr/bin/redis-server is missing; run 'apt-get install redis-server' as root" >&2
  exit 1
fi
echo "ensure-redis: installing redis-server from Debian's packages" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
/usr/bin/redis-server --version >&2
