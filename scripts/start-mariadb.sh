#!/usr/bin/env bash
# Makes sure the MariaDB server the MySQL metadata tests use answers on 127.0.0.1:3306
# (user root, no password, database `test`): starts it when it is not running. Idempotent.
# BERTH_TEST_MYSQL_URL pointing elsewhere: nothing to do here.
set -euo pipefail
if [ -n "${BERTH_TEST_MYSQL_URL:-}" ]; then exit 0; fi
ready() { mariadb -uroot -h127.0.0.1 -P3306 -e 'select 1' >/dev/null 2>&1; }
ready && exit 0
if ! [ -x /usr/sbin/mariadbd ]; then
  echo "mariadb-server is not installed (scripts/install-system-deps.sh installs it)" >&2
  exit 1
fi
# Debian's package leaves an initialised data directory and unix-socket root; the socket
# directory is not kept across reboots.
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
echo "starting MariaDB"
start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
for _ in $(seq 1 60); do
  ready && break
  sleep 0.5
done
# A fresh Debian install lets root in only over the unix socket (as the OS root user);
# the tests connect over TCP as root without a password and create their own databases.
if ! ready; then
  mariadb -uroot -e "create user if not exists 'root'@'127.0.0.1' identified by '';
    grant all privileges on *.* to 'root'@'127.0.0.1' with grant option;
    create database if not exists test;" 2>/dev/null || true
fi
ready || { echo "MariaDB did not start on 127.0.0.1:3306 (or refuses root over TCP)" >&2; exit 1; }
mariadb -uroot -h127.0.0.1 -e "create database if not exists test" >/dev/null
