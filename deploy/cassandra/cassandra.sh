#!/usr/bin/env bash
# Local single-node Apache Cassandra 5.0 for tests, CI and development.
#
# Runs Cassandra straight from the Maven Central jars (resolved with the tiny
# pom.xml next to this script into deploy/cassandra/.m2) on the local Java 17.
# See README.md in this directory.
#
# Usage: cassandra.sh {start|stop|restart|status|wait|logs|clean|classpath}
#
# Environment (all optional):
#   CASSANDRA_HOST           listen/rpc address            (default 127.0.0.1)
#   CASSANDRA_PORT           CQL native transport port     (default 9042)
#   CASSANDRA_STORAGE_PORT   internode (gossip) port       (default 7000)
#   CASSANDRA_DIR            data/log/pid dir              (default deploy/cassandra/run)
#   CASSANDRA_CLUSTER_NAME   cluster_name                  (default chat-svc-dev)
#   CASSANDRA_SEEDS          seeds ("host:port,...")       (default HOST:STORAGE_PORT, i.e. standalone)
#   CASSANDRA_HEAP_MIN       -Xms                          (default 512m)
#   CASSANDRA_HEAP_MAX       -Xmx                          (default 1g)
#   CASSANDRA_CPUS           -Dcassandra.available_processors (default 2)
#   CASSANDRA_MLOCK          1 = let Cassandra mlockall() its memory like in
#                            production (default 0: prevented, keeps RSS low)
#   CASSANDRA_START_TIMEOUT  seconds to wait for CQL       (default 180)
#   CASSANDRA_STOP_TIMEOUT   seconds before SIGKILL        (default 30)
#   CASSANDRA_JVM_OPTS       extra JVM flags (word-split)
#   CASSANDRA_JAVA           java binary (default $JAVA_HOME/bin/java, then java on PATH)
#   CASSANDRA_MAVEN_REPO     local Maven repository        (default deploy/cassandra/.m2)

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/pom.xml"
CASSANDRA_VERSION="$(sed -n 's:.*<cassandra.version>\(.*\)</cassandra.version>.*:\1:p' "$POM")"

HOST="${CASSANDRA_HOST:-127.0.0.1}"
PORT="${CASSANDRA_PORT:-9042}"
STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-7000}"
DIR="${CASSANDRA_DIR:-$SCRIPT_DIR/run}"
[[ "$DIR" == /* ]] || DIR="$PWD/$DIR"
DIR="${DIR%/}"
CLUSTER_NAME="${CASSANDRA_CLUSTER_NAME:-chat-svc-dev}"
SEEDS="${CASSANDRA_SEEDS:-$HOST:$STORAGE_PORT}"
HEAP_MIN="${CASSANDRA_HEAP_MIN:-512m}"
HEAP_MAX="${CASSANDRA_HEAP_MAX:-1g}"
CPUS="${CASSANDRA_CPUS:-2}"
START_TIMEOUT="${CASSANDRA_START_TIMEOUT:-180}"
STOP_TIMEOUT="${CASSANDRA_STOP_TIMEOUT:-30}"
M2="${CASSANDRA_MAVEN_REPO:-$SCRIPT_DIR/.m2}"
[[ "$M2" == /* ]] || M2="$PWD/$M2"

CP_DIR="$SCRIPT_DIR/run"                       # classpath cache is shared by all nodes
CP_FILE="$CP_DIR/classpath-$CASSANDRA_VERSION.txt"
PIDFILE="$DIR/cassandra.pid"
LOGDIR="$DIR/logs"
YAML="$DIR/cassandra.yaml"
MAIN_CLASS="org.apache.cassandra.service.CassandraDaemon"

say()  { echo "cassandra[$HOST:$PORT]: $*"; }
err()  { echo "cassandra[$HOST:$PORT]: ERROR: $*" >&2; }
die()  { err "$*"; exit 1; }

for v in PORT STORAGE_PORT CPUS START_TIMEOUT STOP_TIMEOUT; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a number, got '${!v}'"
done
[[ "$PORT" != "$STORAGE_PORT" ]] || die "CASSANDRA_PORT and CASSANDRA_STORAGE_PORT must differ"
[[ -n "$CASSANDRA_VERSION" ]] || die "cannot read <cassandra.version> from $POM"

# ---------------------------------------------------------------------------
# probes (they only ever connect to HOST:PORT / HOST:STORAGE_PORT)

# CQL handshake: send an OPTIONS request (protocol v4 header: version 0x04,
# flags 0, stream 0, opcode 0x05 OPTIONS, body length 0) and expect a v4
# response frame (0x84) with opcode 0x06 SUPPORTED.
cql_ping() {
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "\x04\x00\x00\x00\x05\x00\x00\x00\x00" >&3
    hdr=$(head -c 9 <&3 | od -An -tx1 | tr -d " \n")
    [[ ${hdr:0:2} == 84 && ${hdr:8:2} == 06 ]]
  ' _ "$HOST" "$PORT" 2>/dev/null
}

port_open() { # host port
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# Prints the pid of the Cassandra started from $DIR if it is alive.
our_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against a recycled pid: must be our CassandraDaemon with our yaml
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmd" == *"$MAIN_CLASS"* && "$cmd" == *"-Dcassandra.config=file://$YAML "* ]] || return 1
  echo "$pid"
}

log_tail() {
  local n="${1:-40}"
  for f in "$LOGDIR/stdout.log" "$LOGDIR/system.log"; do
    if [[ -s "$f" ]]; then
      echo "----- last $n lines of $f -----" >&2
      tail -n "$n" "$f" >&2
    fi
  done
}

# ---------------------------------------------------------------------------
# classpath (Maven Central -> $M2, cached in $CP_FILE)

classpath_ok() {
  [[ -s "$CP_FILE" && "$CP_FILE" -nt "$POM" ]] || return 1
  local cp jar
  cp="$(cat "$CP_FILE")"
  [[ "$cp" == "$M2/"* ]] || return 1
  IFS=: read -r -a jars <<<"$cp"
  for jar in "${jars[@]}"; do [[ -f "$jar" ]] || return 1; done
}

resolve_classpath() {
  mkdir -p "$CP_DIR"
  exec 8>"$CP_DIR/.classpath.lock"
  flock 8
  if ! classpath_ok; then
    command -v mvn >/dev/null || die "mvn (Maven) not found; needed once to download Cassandra $CASSANDRA_VERSION"
    if [[ -f "$M2/org/apache/cassandra/cassandra-all/$CASSANDRA_VERSION/cassandra-all-$CASSANDRA_VERSION.jar" ]]; then
      say "resolving cassandra-all $CASSANDRA_VERSION classpath from the Maven cache $M2..."
    else
      say "downloading cassandra-all $CASSANDRA_VERSION and its dependencies from Maven Central into $M2 (~85 MB, once)..."
    fi
    local t0=$SECONDS tmp="$CP_FILE.tmp.$$" mvnlog="$CP_DIR/mvn.log"
    if ! (cd "$SCRIPT_DIR" && mvn -B -Dstyle.color=never -f "$POM" -Dmaven.repo.local="$M2" \
            dependency:build-classpath -Dmdep.includeScope=runtime -Dmdep.outputFile="$tmp") >"$mvnlog" 2>&1; then
      rm -f "$tmp"
      tail -n 30 "$mvnlog" >&2
      die "Maven could not resolve org.apache.cassandra:cassandra-all:$CASSANDRA_VERSION (full output: $mvnlog)"
    fi
    mv -f "$tmp" "$CP_FILE"
    classpath_ok || die "resolved classpath $CP_FILE is incomplete"
    say "classpath resolved in $((SECONDS - t0))s ($(tr ':' '\n' <"$CP_FILE" | wc -l) jars)"
  fi
  flock -u 8
  exec 8>&-
}

# ---------------------------------------------------------------------------
# java

find_java() {
  local java="${CASSANDRA_JAVA:-}"
  if [[ -z "$java" && -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then java="$JAVA_HOME/bin/java"; fi
  [[ -n "$java" ]] || java="$(command -v java || true)"
  [[ -n "$java" ]] || die "java not found (Cassandra 5.0 needs Java 17; set CASSANDRA_JAVA or JAVA_HOME)"
  local ver
  ver="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
  [[ "$ver" == 17 ]] || die "$java is Java $ver; this setup is made for Java 17 (set CASSANDRA_JAVA or JAVA_HOME)"
  echo "$java"
}

read_opts_file() { # prints flags, one per line; "--add-opens x" -> "--add-opens=x"
  grep -E '^[[:space:]]*-' "$1" \
    | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e 's/^\(--[a-z-]*\)[[:space:]]\{1,\}/\1=/'
}

# ---------------------------------------------------------------------------
# yaml

sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

render_yaml() {
  local tmp="$YAML.tmp.$$"
  sed -e "s|@@CLUSTER_NAME@@|$(sed_escape "$CLUSTER_NAME")|g" \
      -e "s|@@HOST@@|$(sed_escape "$HOST")|g" \
      -e "s|@@NATIVE_PORT@@|$PORT|g" \
      -e "s|@@STORAGE_PORT@@|$STORAGE_PORT|g" \
      -e "s|@@SEEDS@@|$(sed_escape "$SEEDS")|g" \
      -e "s|@@DIR@@|$(sed_escape "$DIR")|g" \
      "$SCRIPT_DIR/cassandra.yaml" >"$tmp"
  mv -f "$tmp" "$YAML"
}

# ---------------------------------------------------------------------------
# commands

# Waits until CQL answers. $1 = pid to watch (may be empty), $2 = start time.
wait_ready() {
  local pid="$1" t0="$2" next_note=$((SECONDS + 10))
  while true; do
    if cql_ping; then
      say "ready: CQL answering on $HOST:$PORT${pid:+ (pid $pid)} after $((SECONDS - t0))s"
      return 0
    fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      err "Cassandra (pid $pid) exited during startup"
      rm -f "$PIDFILE"
      log_tail 60
      return 1
    fi
    if ((SECONDS - t0 >= START_TIMEOUT)); then
      err "CQL not answering on $HOST:$PORT after ${START_TIMEOUT}s${pid:+ (pid $pid still running; 'cassandra.sh stop' stops it)}"
      log_tail 60
      return 1
    fi
    if ((SECONDS >= next_note)); then
      say "still starting... $((SECONDS - t0))s"
      next_note=$((SECONDS + 10))
    fi
    sleep 1
  done
}

cmd_start() {
  local t0=$SECONDS pid
  mkdir -p "$DIR" "$LOGDIR"
  exec 9>"$DIR/.lock"
  if ! flock -n 9; then
    say "another 'cassandra.sh start' for $DIR is running; waiting for it"
    flock 9
  fi

  if pid="$(our_pid)"; then
    if cql_ping; then
      say "already running (pid $pid), CQL answering on $HOST:$PORT"
      return 0
    fi
    say "already starting (pid $pid); waiting for CQL on $HOST:$PORT"
    wait_ready "$pid" "$t0"
    return
  fi
  rm -f "$PIDFILE"

  if port_open "$HOST" "$PORT"; then
    die "$HOST:$PORT is already in use by another process (not a node started from $DIR)"
  fi
  if port_open "$HOST" "$STORAGE_PORT"; then
    die "$HOST:$STORAGE_PORT (storage port) is already in use by another process"
  fi

  local java
  java="$(find_java)"
  resolve_classpath
  local cp
  cp="$(cat "$CP_FILE")"
  local jamm
  jamm="$(tr ':' '\n' <<<"$cp" | grep -E '/jamm-[^/]*\.jar$' | head -n1 || true)"

  mkdir -p "$DIR/data" "$DIR/commitlog" "$DIR/saved_caches" "$DIR/hints" "$DIR/cdc_raw" "$DIR/triggers"
  render_yaml

  local -a opts=()
  mapfile -t opts < <(read_opts_file "$SCRIPT_DIR/jvm-server.options"; read_opts_file "$SCRIPT_DIR/jvm17-server.options")
  opts+=(
    "-Xms$HEAP_MIN" "-Xmx$HEAP_MAX"
    "-XX:ErrorFile=$LOGDIR/hs_err_%p.log"
    "-Dcassandra.config=file://$YAML"
    "-Dcassandra-foreground=yes"
    "-Dcassandra.storagedir=$DIR"
    "-Dcassandra.logdir=$LOGDIR"
    "-Dcassandra.triggers_dir=$DIR/triggers"
    "-Dlogback.configurationFile=file://$SCRIPT_DIR/logback.xml"
    "-Dcassandra.available_processors=$CPUS"
    # fast startup: don't wait for gossip to settle, create the default role at once
    "-Dcassandra.skip_wait_for_gossip_to_settle=0"
    "-Dcassandra.superuser_setup_delay_ms=0"
    # faster stop: announce shutdown to peers for 200 ms, not 2 s
    "-Dcassandra.shutdown_announce_in_ms=200"
  )
  if [[ "$SEEDS" == "$HOST:$STORAGE_PORT" || "$SEEDS" == "$HOST" ]]; then
    # standalone: nobody to learn the ring or the schema from
    opts+=("-Dcassandra.ring_delay_ms=1000")
  else
    # joining another node: keep the default 30 s ring delay; with a short one
    # the node bootstraps before it has pulled the schema and streams nothing
    say "joining the cluster of seeds $SEEDS (bootstrap waits ~30s for ring and schema)"
  fi
  [[ -n "$jamm" ]] && opts+=("-javaagent:$jamm")
  if [[ -n "${CASSANDRA_JVM_OPTS:-}" ]]; then
    local -a extra
    read -r -a extra <<<"$CASSANDRA_JVM_OPTS"
    opts+=("${extra[@]}")
  fi

  # Cassandra always calls mlockall(MCL_CURRENT) at startup, which makes the
  # whole committed heap resident and unswappable. Useless for a test node on a
  # shared machine: make it fail (Cassandra then just logs a warning) with a
  # zero memlock limit and, for root, without CAP_IPC_LOCK.
  local -a prefix=()
  local memlock_limit=""
  if [[ "${CASSANDRA_MLOCK:-0}" != 1 ]]; then
    memlock_limit=0
    if [[ $EUID -eq 0 ]] && command -v setpriv >/dev/null \
       && setpriv --bounding-set=-ipc_lock true 2>/dev/null; then
      prefix=(setpriv --bounding-set=-ipc_lock)
    fi
  fi

  say "starting Cassandra $CASSANDRA_VERSION (heap $HEAP_MIN..$HEAP_MAX, storage port $STORAGE_PORT, dir $DIR)"
  {
    echo "=== $(date -Is) starting Cassandra $CASSANDRA_VERSION on $HOST:$PORT ==="
  } >>"$LOGDIR/stdout.log"
  # setsid+nohup: survive the caller's terminal/process group going away.
  # The inner bash writes its own pid and then becomes java via exec.
  # fd 9 (our start lock) must not leak into the long-running java process.
  (
    cd "$DIR"
    [[ -z "$memlock_limit" ]] || ulimit -S -l "$memlock_limit"
    exec setsid nohup "${prefix[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
      "$java" "${opts[@]}" -cp "$cp" "$MAIN_CLASS" \
      </dev/null >>"$LOGDIR/stdout.log" 2>&1 9>&- 8>&-
  ) &
  local i
  for i in $(seq 1 50); do [[ -s "$PIDFILE" ]] && break; sleep 0.1; done
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] || { log_tail 40; die "failed to launch java"; }
  say "launched pid $pid; waiting for CQL on $HOST:$PORT (timeout ${START_TIMEOUT}s, log: $LOGDIR/system.log)"
  wait_ready "$pid" "$t0"
}

cmd_stop() {
  local pid t0=$SECONDS
  if ! pid="$(our_pid)"; then
    rm -f "$PIDFILE"
    say "not running (dir $DIR)"
    return 0
  fi
  say "stopping pid $pid (SIGTERM, up to ${STOP_TIMEOUT}s)"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((SECONDS - t0 < STOP_TIMEOUT)); do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    say "still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$PIDFILE"
  say "stopped in $((SECONDS - t0))s"
}

cmd_status() {
  local pid
  if pid="$(our_pid)"; then
    local rss
    rss="$(awk '/^VmRSS:/ {printf "%d MB", $2/1024}' "/proc/$pid/status" 2>/dev/null || echo "?")"
    if cql_ping; then
      say "running (pid $pid, RSS $rss), CQL answering; dir $DIR"
      return 0
    fi
    say "running (pid $pid, RSS $rss) but CQL not answering (yet); dir $DIR"
    return 1
  fi
  if cql_ping; then
    say "not started from $DIR, but something answers CQL on $HOST:$PORT"
    return 3
  fi
  say "not running (dir $DIR)"
  return 3
}

cmd_wait() {
  local pid=""
  pid="$(our_pid || true)"
  say "waiting for CQL on $HOST:$PORT (timeout ${START_TIMEOUT}s)"
  wait_ready "$pid" "$SECONDS"
}

cmd_logs() {
  [[ -f "$LOGDIR/system.log" ]] || die "no log at $LOGDIR/system.log"
  tail -n "${1:-100}" "$LOGDIR/system.log"
}

cmd_clean() {
  if our_pid >/dev/null; then die "running; stop it first"; fi
  # only what this script creates: never rm -rf "$DIR" itself (may be user-given)
  rm -rf "$DIR/data" "$DIR/commitlog" "$DIR/saved_caches" "$DIR/hints" "$DIR/cdc_raw" \
         "$DIR/triggers" "$DIR/logs" "$YAML" "$PIDFILE" "$DIR/.lock"
  say "removed data and logs in $DIR"
}

usage() {
  sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  start)     cmd_start ;;
  stop)      cmd_stop ;;
  restart)   cmd_stop; cmd_start ;;
  status)    cmd_status ;;
  wait)      cmd_wait ;;
  logs)      shift; cmd_logs "$@" ;;
  clean)     cmd_clean ;;
  classpath) resolve_classpath; cat "$CP_FILE"; echo ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
