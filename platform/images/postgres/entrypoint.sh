#!/bin/sh
# Entrypoint of the Flotilla PostgreSQL image (platform/images/postgres/Dockerfile).
#
# 1. PGDATA empty: initdb (UTF8, scram-sha-256). PGDATA not empty: kept as it is.
# 2. Every start: pg_hba.conf rewritten (superuser on the local socket only, every other role
#    with scram-sha-256 over TCP); a socket-only server then creates each missing login role and
#    database of POSTGRES_DATABASES (the role owns its database, nobody else may connect to it)
#    and sets each role's password from POSTGRES_PASSWORD_DIR/<name>, so the Secret is the truth.
# 3. postgres runs in the foreground; SIGTERM or SIGINT means fast shutdown (clients
#    disconnected, a checkpoint written), SIGQUIT immediate shutdown.
#
# Settings (environment): PGDATA, PGPORT (5432), POSTGRES_LISTEN_ADDRESSES (0.0.0.0),
# POSTGRES_SOCKET_DIR (/tmp), POSTGRES_DATABASES ("auth order payment"), POSTGRES_PASSWORD_DIR
# (/etc/postgres/passwords), POSTGRES_BIN (the directory of initdb; default: from PATH or
# /usr/lib/postgresql/15/bin). Arguments go to postgres, e.g. -c max_connections=200.
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data/pgdata}"
PGPORT="${PGPORT:-5432}"
LISTEN="${POSTGRES_LISTEN_ADDRESSES:-0.0.0.0}"
SOCKET_DIR="${POSTGRES_SOCKET_DIR:-/tmp}"
DATABASES="${POSTGRES_DATABASES:-auth order payment}"
PASSWORD_DIR="${POSTGRES_PASSWORD_DIR:-/etc/postgres/passwords}"
SUPERUSER=postgres
export PGDATA PGPORT

log() { printf 'flotilla-postgres: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ -n "${POSTGRES_BIN:-}" ]; then
  PATH="$POSTGRES_BIN:$PATH"
elif ! command -v initdb >/dev/null 2>&1; then
  PATH="/usr/lib/postgresql/15/bin:$PATH"
fi
command -v postgres >/dev/null 2>&1 \
  || die "the PostgreSQL server binaries are not on PATH: set POSTGRES_BIN to their directory"
[ "$(id -u)" != 0 ] || die "refusing to run as root: run as uid 10001 (the image's postgres user)"

# Check the inputs before touching anything: each name a valid identifier, each password there.
for name in $DATABASES; do
  case "$name" in
    "$SUPERUSER") die "POSTGRES_DATABASES may not contain $SUPERUSER (the superuser)" ;;
    [a-z_]*) ;;
    *) die "POSTGRES_DATABASES: '$name' is not a lower-case identifier" ;;
  esac
  case "$name" in *[!a-z0-9_]*) die "POSTGRES_DATABASES: '$name' is not a lower-case identifier" ;; esac
  [ -s "$PASSWORD_DIR/$name" ] \
    || die "no password for role $name: mount a Secret with the key '$name' at $PASSWORD_DIR"
done

umask 077
mkdir -p "$PGDATA"
# A claim's root may come group-writable (fsGroup); PostgreSQL insists on 0700 for PGDATA.
chmod 0700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "$(ls -A "$PGDATA")" ]; then
    die "$PGDATA is neither empty nor a PostgreSQL data directory: empty it or point PGDATA elsewhere"
  fi
  log "initialising a new cluster in $PGDATA"
  initdb --pgdata="$PGDATA" --username="$SUPERUSER" --encoding=UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
else
  log "using the existing cluster in $PGDATA (version $(cat "$PGDATA/PG_VERSION"))"
fi

# The superuser only through the Unix socket, which only this uid may open (mode 0700 below);
# everyone else by password over TCP.
cat > "$PGDATA/pg_hba.conf" <<HBA
# Written by flotilla-postgres at every start; edits are overwritten.
local all all trust
host all $SUPERUSER 0.0.0.0/0 reject
host all $SUPERUSER ::/0 reject
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
HBA

COMMON_OPTIONS="-c unix_socket_directories=$SOCKET_DIR -c unix_socket_permissions=0700 \
-c password_encryption=scram-sha-256 -c port=$PGPORT"

# Provision through a server that listens on the socket only.
pg_ctl --pgdata="$PGDATA" --silent --wait --log="$SOCKET_DIR/provision.log" \
  --options="$COMMON_OPTIONS -c listen_addresses=''" start \
  || { cat "$SOCKET_DIR/provision.log" >&2; die "the server did not start; see its log above"; }
for name in $DATABASES; do
  # The password is read by psql from the file (never on a command line).
  psql --quiet --no-psqlrc --host="$SOCKET_DIR" --username="$SUPERUSER" --dbname=postgres \
    --set=ON_ERROR_STOP=1 --set=name="$name" --set=file="$PASSWORD_DIR/$name" <<'SQL' \
    || { pg_ctl --pgdata="$PGDATA" --silent --mode=fast --wait stop; die "provisioning $name failed"; }
\set password `cat :'file'`
SELECT format('CREATE ROLE %I LOGIN', :'name')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
SQL
  log "role and database $name ready"
done
pg_ctl --pgdata="$PGDATA" --silent --mode=fast --wait stop

# The server in the foreground, as a child: this shell turns SIGTERM into a fast shutdown
# (SIGINT), since PostgreSQL's own SIGTERM handling (smart shutdown) waits for every client.
# shellcheck disable=SC2086 # COMMON_OPTIONS is a list of options
postgres $COMMON_OPTIONS -c listen_addresses="$LISTEN" "$@" &
server=$!
trap 'kill -INT "$server" 2>/dev/null || true' TERM INT
trap 'kill -QUIT "$server" 2>/dev/null || true' QUIT
# wait returns early when a trapped signal arrives; wait again until the server has exited.
while :; do
  status=0
  wait "$server" || status=$?
  kill -0 "$server" 2>/dev/null || break
done
log "postgres exited with status $status"
exit "$status"
