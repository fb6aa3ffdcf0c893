#!/usr/bin/env bash
# Docker for the tests and for a one-machine hub: installs Debian's engine if it is missing,
# starts dockerd in the background if none answers, then builds the notebook images.
#
#   bash .ci/docker.sh                 all three steps (CI runs this before `npm test`)
#   bash .ci/docker.sh daemon-start    only start dockerd (if it isn't answering) and wait for it
#   bash .ci/docker.sh daemon-stop     stop the dockerd this script started (its pid file)
#
# The daemon this script starts writes its log to $OERHUB_DOCKERD_DIR/dockerd.log and its pid
# to $OERHUB_DOCKERD_DIR/dockerd.pid (default /tmp/oerhub-dockerd), so a test can stop and
# restart it ("Docker going away") without guessing. A daemon started by someone else is used
# as it is and never stopped by daemon-stop.
#
# The daemon runs with $OERHUB_DOCKERD_DIR/daemon.json, which this script writes:
#   live-restore      containers keep running while dockerd stops or restarts (an engine
#                     upgrade or crash no longer kills every student's kernel);
#   userland-proxy    off, so ports published on 127.0.0.1 are forwarded by the kernel's NAT
#                     rules, which stay while dockerd is down; the docker-proxy processes would
#                     die with dockerd and refuse connections until it is back (moby#27880).
# An operator's own engine wants the same two settings in /etc/docker/daemon.json. Note that
# live-restore can't be combined with swarm mode.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

state_dir="${OERHUB_DOCKERD_DIR:-/tmp/oerhub-dockerd}"
pid_file="$state_dir/dockerd.pid"
log_file="$state_dir/dockerd.log"
config_file="$state_dir/daemon.json"
wait_s="${OERHUB_DOCKERD_WAIT_S:-60}"

log() { printf '\n== %s\n' "$*"; }
die() { echo "docker.sh: $*" >&2; exit 1; }

install_engine() {
  local need=()
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v docker >/dev/null 2>&1 || need+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
  fi
}

daemon_answers() { timeout 10 docker info >/dev/null 2>&1; }

daemon_start() {
  if daemon_answers; then
    echo "dockerd already answers"
    return 0
  fi
  mkdir -p "$state_dir"
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    echo "dockerd (pid $(cat "$pid_file")) is running but not answering yet; waiting"
  else
    log "starting dockerd (log: $log_file, config: $config_file)"
    printf '%s\n' '{' '  "live-restore": true,' '  "userland-proxy": false' '}' >"$config_file"
    # setsid: the daemon must outlive this script and the shell that ran it.
    setsid dockerd --config-file "$config_file" >>"$log_file" 2>&1 </dev/null &
    echo $! >"$pid_file"
  fi
  local i
  for ((i = 0; i < wait_s * 2; i++)); do
    if daemon_answers; then
      echo "dockerd answers (pid $(cat "$pid_file"))"
      return 0
    fi
    kill -0 "$(cat "$pid_file")" 2>/dev/null || { tail -n 30 "$log_file" >&2; die "dockerd exited; its log is above"; }
    sleep 0.5
  done
  tail -n 30 "$log_file" >&2
  die "dockerd did not answer within ${wait_s}s"
}

daemon_stop() {
  [ -f "$pid_file" ] || die "no $pid_file: this script did not start the running dockerd, so it won't stop it"
  local pid
  pid="$(cat "$pid_file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    local i
    for ((i = 0; i < 60; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill -0 "$pid" 2>/dev/null && die "dockerd (pid $pid) did not stop within 30s"
  fi
  rm -f "$pid_file"
  echo "dockerd stopped"
}

case "${1:-all}" in
  daemon-start) daemon_start ;;
  daemon-stop) daemon_stop ;;
  all)
    install_engine
    daemon_start
    docker version --format 'docker client {{.Client.Version}}, engine {{.Server.Version}}'
    log "building the notebook images (images/build.sh)"
    bash images/build.sh
    ;;
  *) die "unknown command $1 (all, daemon-start, daemon-stop)" ;;
esac
