#!/usr/bin/env bash
# The README's test command: builds everything with warnings as errors and runs every test.
# Installs what the tests need when it is missing and we are root (CI on a fresh Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || need+=(slapd ldap-utils)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/bin/promtool ] || need+=(prometheus)   # promtool checks the metrics exposition
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test.sh: missing ${need[*]}; run: sudo apt-get install -y ${need[*]}" >&2
  fi
fi

dotnet build Vault.sln -c Release -warnaserror -nologo -clp:ErrorsOnly
dotnet test Vault.sln -c Release --no-build -nologo --logger "console;verbosity=normal" "$@"
