#!/usr/bin/env bash
# Installs the Debian packages the test suite drives (real clients and servers).
# Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
# command:package — clients the interop tests drive, openssl for test certificates,
# docker-registry (CNCF Distribution) for the benchmark, nginx for the HA test,
# htpasswd (apache2-utils) to write real `htpasswd -B` files in the auth tests,
# mariadbd (mariadb-server) for the MySQL/MariaDB metadata tests (scripts/start-mariadb.sh),
# promtool (prometheus) to check /metrics and the shipped alert rules (test/metrics),
# slapd + ldapadd (ldap-utils): the LDAP tests start their own OpenLDAP on a loopback port (test/auth/ldap*),
# rpm (rpmbuild + rpm --justdb): the SBOM tests build a real sqlite rpmdb (test/sbom),
# chromium (+ fonts-liberation for readable screenshots): the web UI's browser tests (test/ui/e2e) drive it with playwright-core.
for pair in skopeo:skopeo podman:podman buildah:buildah umoci:umoci openssl:openssl docker-registry:docker-registry nginx:nginx-light htpasswd:apache2-utils mariadbd:mariadb-server promtool:prometheus slapd:slapd ldapadd:ldap-utils rpmbuild:rpm chromium:chromium; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
[ -f /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ] || need+=(fonts-liberation)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
