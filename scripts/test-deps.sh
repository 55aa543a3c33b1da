#!/usr/bin/env bash
# Installs and starts what the tests need on a Debian/Ubuntu machine: ODBC drivers, Monitoring Plugins, pg_cron,
# Prometheus (promtool), Alertmanager, iproute2 (network namespaces for the two-host install test), systemd
# (systemd-analyze checks the units), headless Chromium and its WebDriver with CJK fonts (the console's screenshot),
# zabbix_agent2 (bench/agent_vs_zabbix.py runs it next to the agent; Debian has no separate zabbix-get package, the
# bench speaks the passive protocol itself),
# and PostgreSQL + MariaDB on 127.0.0.1 when none are running.
# Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
PACKAGES=(unixodbc odbc-postgresql odbc-mariadb monitoring-plugins-basic prometheus prometheus-alertmanager logrotate
          iproute2 systemd chromium chromium-driver fonts-noto-cjk zabbix-agent2)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Server binaries are needed even when 5432/3306 are served: some tests start throwaway clusters of their own
# (pg_stat_statements preloaded, MariaDB with performance_schema on), and the grant tests use psql and mariadb.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
command -v psql >/dev/null || missing+=(postgresql-client)
# pg_cron for the job.window test against the extension's own tables (a throwaway cluster preloads it).
if ! ls /usr/lib/postgresql/*/lib/pg_cron.so >/dev/null 2>&1; then
  pgmajor=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
  missing+=("postgresql-${pgmajor:-15}-cron")
fi
command -v mariadb >/dev/null || command -v mysql >/dev/null || missing+=(mariadb-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  # Service packages must not start their own daemons with default ports inside containers; we start them below.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian prometheus packages start daemons where systemd runs; tests start their own on other ports.

RUN_DIR=${XUNJIAN_SERVICES_DIR:-/tmp/xunjian-test-services}
mkdir -p "$RUN_DIR"

if ! port_open 5432; then
  if ls /etc/postgresql/*/main >/dev/null 2>&1 && pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null && port_open 5432; then
    echo "test-deps: started the installed PostgreSQL cluster"
  else
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    pgdata="$RUN_DIR/pg"
    owner=postgres
    id "$owner" >/dev/null 2>&1 || owner=$(id -un)
    if [ ! -s "$pgdata/PG_VERSION" ]; then
      $SUDO mkdir -p "$pgdata" && $SUDO chown "$owner" "$pgdata"
      $SUDO -u "$owner" "$bindir/initdb" -D "$pgdata" -U postgres -A trust >/dev/null
    fi
    $SUDO -u "$owner" "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/log" -o "-p 5432 -c listen_addresses=127.0.0.1 -k /tmp" -w start >/dev/null
    echo "test-deps: started a throwaway PostgreSQL in $pgdata"
  fi
fi
for _ in $(seq 1 30); do port_open 5432 && break; sleep 0.5; done
psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test"

if ! port_open 3306; then
  if [ -d /var/lib/mysql/mysql ]; then
    $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    echo "test-deps: started the installed MariaDB"
  else
    mdata="$RUN_DIR/mariadb"
    if [ ! -d "$mdata/mysql" ]; then
      mkdir -p "$mdata"
      mariadb-install-db --user="$(id -un)" --datadir="$mdata" --auth-root-authentication-method=normal >/dev/null
    fi
    nohup /usr/sbin/mariadbd --no-defaults --user="$(id -un)" --datadir="$mdata" --bind-address=127.0.0.1 --port=3306 \
      --socket="$mdata/mysqld.sock" --pid-file="$mdata/mysqld.pid" >"$mdata/log" 2>&1 &
    echo "test-deps: started a throwaway MariaDB in $mdata"
  fi
fi
for _ in $(seq 1 60); do port_open 3306 && break; sleep 0.5; done
mariadb -h 127.0.0.1 -P 3306 -u root -e "CREATE DATABASE IF NOT EXISTS test" 2>/dev/null \
  || mysql -h 127.0.0.1 -P 3306 -u root -e "CREATE DATABASE IF NOT EXISTS test"
echo "test-deps: ready (PostgreSQL 127.0.0.1:5432, MariaDB 127.0.0.1:3306, ODBC drivers: $(odbcinst -q -d | tr '\n' ' '))"
