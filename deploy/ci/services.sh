#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis that the integration tests use are running on
# 127.0.0.1:5432 (trust auth) and 127.0.0.1:6379. Where they run already, nothing happens; where
# they are installed but stopped, they are started; where no cluster exists, a throwaway one is
# created under /tmp from the installed binaries.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
    if [[ -d /etc/postgresql ]] && command -v pg_ctlcluster >/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    fi
    if ! pg_up; then
        bindir=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
        data=/tmp/bosun-pg
        rm -rf "$data" && mkdir -p "$data" && chown postgres "$data" 2>/dev/null || true
        as_pg() { if [[ $(id -u) -eq 0 ]]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
        as_pg "$bindir/initdb -D $data -A trust -U postgres >/dev/null"
        as_pg "$bindir/pg_ctl -D $data -o '-k /tmp -h 127.0.0.1 -p 5432' -l $data/log -w start >/dev/null"
    fi
fi
if ! redis_up; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
fi
for _ in $(seq 50); do pg_up && redis_up && exit 0; sleep 0.2; done
echo "PostgreSQL or Redis did not come up" >&2
exit 1
