#!/usr/bin/env bash
# A local S3-compatible server for tests, CI and development: S3Proxy with its filesystem backend
# (objects are files under the run dir), run from Maven Central's jar on the local Java 17.
# See README.md in this directory.
#
# Usage: s3proxy.sh {jar|start|stop|status}
#   jar     download the jar once (Maven) and print its path
#   start   start a server in the background and create the bucket (waits until it answers)
#   stop    stop the server started from S3PROXY_DIR
#   status  exit 0 when it runs and answers
#
# Environment (all optional):
#   S3PROXY_HOST         listen address                      (default 127.0.0.1)
#   S3PROXY_PORT         port                                (default 9000)
#   S3PROXY_DIR          data, log, pid dir                  (default deploy/s3proxy/run)
#   S3PROXY_IDENTITY     access key id                       (default local-identity)
#   S3PROXY_CREDENTIAL   secret access key                   (default local-credential)
#   S3PROXY_BUCKET       bucket created at start             (default chat-attachments)
#   S3PROXY_MAVEN_REPO   local Maven repository              (default ~/.m2/repository)
#   S3PROXY_JAVA         java binary (default $JAVA_HOME/bin/java, then java on PATH)

set -euo pipefail

VERSION=2.1.0
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HOST="${S3PROXY_HOST:-127.0.0.1}"
PORT="${S3PROXY_PORT:-9000}"
DIR="${S3PROXY_DIR:-$SCRIPT_DIR/run}"
[[ "$DIR" == /* ]] || DIR="$PWD/$DIR"
IDENTITY="${S3PROXY_IDENTITY:-local-identity}"
CREDENTIAL="${S3PROXY_CREDENTIAL:-local-credential}"
BUCKET="${S3PROXY_BUCKET:-chat-attachments}"
M2="${S3PROXY_MAVEN_REPO:-$HOME/.m2/repository}"
JAR="$M2/org/gaul/s3proxy/$VERSION/s3proxy-$VERSION-jar-with-dependencies.jar"
PIDFILE="$DIR/s3proxy.pid"
LOG="$DIR/s3proxy.log"

say() { echo "s3proxy[$HOST:$PORT]: $*"; }
die() { echo "s3proxy[$HOST:$PORT]: ERROR: $*" >&2; exit 1; }

ensure_jar() {
  [[ -s "$JAR" ]] && return 0
  command -v mvn >/dev/null || die "mvn (Maven) not found; needed once to download org.gaul:s3proxy:$VERSION"
  say "downloading org.gaul:s3proxy:$VERSION (jar-with-dependencies, ~16 MB) from Maven Central into $M2..." >&2
  mvn -B -q -Dstyle.color=never -Dmaven.repo.local="$M2" dependency:get \
    -Dartifact="org.gaul:s3proxy:$VERSION:jar:jar-with-dependencies" -Dtransitive=false >&2 \
    || die "Maven could not download org.gaul:s3proxy:$VERSION"
  [[ -s "$JAR" ]] || die "the jar is not at $JAR after the download"
}

find_java() {
  local java="${S3PROXY_JAVA:-}"
  if [[ -z "$java" && -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then java="$JAVA_HOME/bin/java"; fi
  [[ -n "$java" ]] || java="$(command -v java || true)"
  [[ -n "$java" ]] || die "java not found (S3Proxy $VERSION needs Java 17 or later)"
  echo "$java"
}

our_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # a recycled pid is not ours: it must be java running our properties file
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--properties $DIR/s3proxy.conf" || return 1
  echo "$pid"
}

answers() { curl -s -o /dev/null -m 2 "http://$HOST:$PORT/" 2>/dev/null; }

cmd_start() {
  if pid="$(our_pid)"; then say "already running (pid $pid)"; return 0; fi
  ensure_jar
  local java
  java="$(find_java)"
  mkdir -p "$DIR/data/$BUCKET"
  cat >"$DIR/s3proxy.conf" <<CONF
s3proxy.endpoint=http://$HOST:$PORT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$IDENTITY
s3proxy.credential=$CREDENTIAL
s3proxy.cors_allow_all=true
jclouds.provider=filesystem
jclouds.filesystem.basedir=$DIR/data
CONF
  (
    cd "$DIR"
    exec setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
      "$java" -Xmx256m -jar "$JAR" --properties "$DIR/s3proxy.conf" </dev/null >>"$LOG" 2>&1
  ) &
  local t0=$SECONDS
  until answers; do
    if ! our_pid >/dev/null && ((SECONDS - t0 > 2)); then tail -n 30 "$LOG" >&2; die "S3Proxy exited during startup"; fi
    ((SECONDS - t0 < 60)) || { tail -n 30 "$LOG" >&2; die "no answer after 60 s"; }
    sleep 0.3
  done
  say "ready after $((SECONDS - t0))s (pid $(cat "$PIDFILE")), bucket $BUCKET, data in $DIR/data"
}

cmd_stop() {
  local pid
  if ! pid="$(our_pid)"; then rm -f "$PIDFILE"; say "not running"; return 0; fi
  kill -TERM "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$PIDFILE"
  say "stopped"
}

cmd_status() {
  if pid="$(our_pid)" && answers; then say "running (pid $pid)"; return 0; fi
  say "not running"; return 3
}

case "${1:-}" in
  jar) ensure_jar; echo "$JAR" ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
