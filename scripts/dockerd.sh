#!/usr/bin/env bash
# Start or stop a Docker engine for the tests: scripts/dockerd.sh start|stop|clean|status
#
# start: if no engine answers, start dockerd in the background (its log in .zerodown/dockerd/),
#        wait for `docker info` to answer (deadline DOCKERD_START_TIMEOUT, 60 s), then make the
#        engine a single-node swarm manager if it is not one (swarm tests need it).
# stop:  stop only what `start` started: leave the swarm if start initialised it, stop dockerd if
#        start launched it (removing first whatever the tests left: see clean). An engine (or
#        swarm) that was there before is left alone.
# clean: remove every service, container and image labelled zerodown.test=1 (what the test
#        fixtures create), e.g. after a test run that was killed before its own cleanup.
#
# Needs root (the engine does). Files: .zerodown/dockerd/{dockerd.pid,swarm-by-us,dockerd.log}.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${DOCKERD_STATE_DIR:-$ROOT/.zerodown/dockerd}"
PIDFILE="$DIR/dockerd.pid"
SWARM_MARK="$DIR/swarm-by-us"
LOG="$DIR/dockerd.log"
TIMEOUT="${DOCKERD_START_TIMEOUT:-60}"

answers() { docker info >/dev/null 2>&1; }

swarm_state() { docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }

our_pid() {
  # The pid in the file, if it is still a dockerd (a reused pid is not ours).
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "dockerd" ] && echo "$pid"
}

start() {
  mkdir -p "$DIR"
  if ! answers; then
    command -v dockerd >/dev/null || {
      echo "dockerd not found: install the Debian package docker.io" >&2
      exit 1
    }
    echo "starting dockerd (log: $LOG)"
    # Own session: the engine is not hit by a Ctrl-C meant for the tests; `stop` ends it.
    setsid dockerd >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local deadline=$((SECONDS + TIMEOUT))
    until answers; do
      if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "dockerd exited while starting; last lines of $LOG:" >&2
        tail -n 20 "$LOG" >&2
        rm -f "$PIDFILE"
        exit 1
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "dockerd did not answer within ${TIMEOUT}s; see $LOG" >&2
        exit 1
      fi
      sleep 0.2
    done
  fi
  if [ "$(swarm_state)" != "active" ]; then
    echo "initialising a single-node swarm"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
    touch "$SWARM_MARK"
  fi
}

clean() {
  answers || return 0
  local filter="label=zerodown.test=1"
  docker service ls -q --filter "$filter" 2>/dev/null | xargs -r docker service rm >/dev/null || true
  docker ps -aq --filter "$filter" | xargs -r docker rm -f -v >/dev/null || true
  docker images -q --filter "$filter" | sort -u | xargs -r docker rmi -f >/dev/null || true
}

stop() {
  if our_pid >/dev/null; then
    clean
  fi
  if [ -f "$SWARM_MARK" ]; then
    if answers && [ "$(swarm_state)" = "active" ]; then
      docker swarm leave --force >/dev/null || true
    fi
    rm -f "$SWARM_MARK"
  fi
  local pid
  if pid="$(our_pid)"; then
    echo "stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do # up to 30 s: the engine stops its containers first
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "dockerd did not stop within 30 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  clean) clean ;;
  status)
    if answers; then echo "engine answers; swarm: $(swarm_state)"; else echo "no engine"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|clean|status" >&2
    exit 2
    ;;
esac
