#!/usr/bin/env bash
# deploy/local/kafka.sh: install, start, stop and describe recon's local Apache Kafka broker
# (KRaft, one node that is broker and controller; PLAINTEXT on 127.0.0.1:19092, controller on
# 127.0.0.1:19093). For integration tests only: one replica, no auth, loopback.
#
#   kafka.sh install   fetch the broker's jars from Maven Central into the cache (idempotent)
#                      and build the readiness probe (deploy/local/kafka/ping)
#   kafka.sh start     install if missing, format storage once, start in the background
#                      (idempotent), wait until it answers metadata requests, print its version
#   kafka.sh stop      stop the broker this script started (by its pid file only)
#   kafka.sh status    say whether it runs and answers
#   kafka.sh env       print RECON_KAFKA_BROKERS=127.0.0.1:19092
#
# Needs java 17+ and mvn (Debian: openjdk-17-jre-headless, maven); go to build the probe
# (without go, readiness falls back to a TCP check plus the broker's "started" log line).
#
# Environment (all optional):
#   RECON_KAFKA_VERSION          Kafka version from Maven Central (default 4.1.1)
#   RECON_CACHE_DIR              jars go to $RECON_CACHE_DIR/kafka-<version>/libs
#                                (default $HOME/.cache/recon)
#   RECON_SERVICES_DIR           state (data, logs, pid) in $RECON_SERVICES_DIR/kafka
#                                (default /tmp/recon-services)
#   RECON_KAFKA_HEAP_OPTS        default "-Xmx512m -Xms256m"
#   RECON_KAFKA_START_TIMEOUT_SECONDS  default 90
#   RECON_KAFKA_PROXIED_PORT, RECON_KAFKA_PROXIED_ADVERTISED  both set: a second listener on
#                                127.0.0.1:<port> that advertises <host:port> (a proxy in front of
#                                it, for network-fault tests; make chaos)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VERSION="${RECON_KAFKA_VERSION:-4.1.1}"
CACHE_DIR="${RECON_CACHE_DIR:-${HOME:-/root}/.cache/recon}"
KAFKA_HOME="$CACHE_DIR/kafka-$VERSION"
LIBS="$KAFKA_HOME/libs"
INSTALLED_MARK="$LIBS/.recon-installed"
PING_BIN="$CACHE_DIR/kafka-ping"
SERVICES_DIR="${RECON_SERVICES_DIR:-/tmp/recon-services}"
DIR="$SERVICES_DIR/kafka"
PIDFILE="$DIR/kafka.pid"
CONFIG="$DIR/server.properties"
LOG_DIR="$DIR/logs"
LOG="$LOG_DIR/server.log"
STDOUT="$LOG_DIR/stdout.log"
PORT="${RECON_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${RECON_KAFKA_CONTROLLER_PORT:-19093}"
BROKERS="127.0.0.1:$PORT"
HEAP_OPTS="${RECON_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
START_TIMEOUT_SECONDS="${RECON_KAFKA_START_TIMEOUT_SECONDS:-90}"
STOP_TIMEOUT_SECONDS=60
JVM_OPTS=(-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
	-Djava.awt.headless=true
	"-Dlog4j2.configurationFile=$HERE/kafka/log4j2.properties"
	"-Dkafka.logs.dir=$LOG_DIR")

say() { echo "kafka: $*"; }
die() { echo "kafka.sh: $*" >&2; exit 1; }

# LOG_OFFSET: size of server.log before this start, so that show_logs shows only this run.
LOG_OFFSET=0

show_logs() {
	local lines
	lines="$(tail -c +"$((LOG_OFFSET + 1))" "$LOG" 2>/dev/null | tail -n 30)"
	if [ -n "$lines" ]; then
		echo "---- last lines of $LOG (this run) ----" >&2
		echo "$lines" >&2
	fi
	if [ -s "$STDOUT" ]; then
		echo "---- last lines of $STDOUT ----" >&2
		tail -n 30 "$STDOUT" >&2
	fi
}

need_java() {
	command -v java >/dev/null 2>&1 || die "java not found; Kafka $VERSION needs Java 17+ (Debian: apt-get install openjdk-17-jre-headless)"
	local major
	major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
	[ -n "$major" ] && [ "$major" -ge 17 ] || die "java $major found at $(command -v java); Kafka $VERSION needs Java 17+"
}

installed() { [ -f "$INSTALLED_MARK" ] && [ -f "$LIBS/kafka_2.13-$VERSION.jar" ]; }

cmd_install() {
	need_java
	if installed; then
		say "$VERSION already installed ($LIBS, $(ls "$LIBS" | grep -c '\.jar$') jars)"
	else
		command -v mvn >/dev/null 2>&1 || die "mvn not found; it fetches Kafka's jars from Maven Central (Debian: apt-get install maven)"
		mkdir -p "$KAFKA_HOME"
		local tmp="$KAFKA_HOME/libs.tmp.$$" mvnlog="$KAFKA_HOME/install.log" t0=$SECONDS
		rm -rf "$tmp"
		say "installing $VERSION from Maven Central into $LIBS (log: $mvnlog)"
		if ! mvn -B -f "$HERE/kafka/pom.xml" "-Dkafka.version=$VERSION" \
			dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$tmp" >"$mvnlog" 2>&1; then
			rm -rf "$tmp"
			echo "---- last lines of $mvnlog ----" >&2
			grep -E 'ERROR|Could not|refused|401|403|404|resolve' "$mvnlog" | tail -n 20 >&2 || tail -n 20 "$mvnlog" >&2
			die "mvn could not fetch org.apache.kafka:kafka_2.13:$VERSION and its runtime dependencies (is Maven Central reachable? see $mvnlog)"
		fi
		[ -f "$tmp/kafka_2.13-$VERSION.jar" ] || { rm -rf "$tmp"; die "mvn succeeded but $tmp/kafka_2.13-$VERSION.jar is missing"; }
		rm -rf "$LIBS"
		mv "$tmp" "$LIBS"
		date -u +%FT%TZ >"$INSTALLED_MARK"
		say "installed $VERSION in $((SECONDS - t0)) s ($(ls "$LIBS" | grep -c '\.jar$') jars, $(du -sh "$LIBS" | cut -f1))"
	fi
	build_ping || true
}

# build_ping builds the readiness probe when go is available and the binary is older than
# its source. It returns 1 when there is no probe to use.
build_ping() {
	local src="$HERE/kafka/ping/main.go"
	if [ -x "$PING_BIN" ] && [ "$PING_BIN" -nt "$src" ]; then
		return 0
	fi
	if ! command -v go >/dev/null 2>&1; then
		say "go not found: readiness check falls back to TCP + log line"
		return 1
	fi
	mkdir -p "$CACHE_DIR"
	if ! (cd "$REPO/deploy" && go build -o "$PING_BIN.tmp" ./local/kafka/ping); then
		rm -f "$PING_BIN.tmp"
		say "could not build deploy/local/kafka/ping: readiness check falls back to TCP + log line"
		return 1
	fi
	mv "$PING_BIN.tmp" "$PING_BIN"
}

# ours PID: the process is alive and is the broker started with our config.
ours() {
	local pid="$1"
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $CONFIG"
}

running_pid() {
	[ -f "$PIDFILE" ] || return 1
	local pid
	pid="$(cat "$PIDFILE" 2>/dev/null || true)"
	if ours "$pid"; then
		echo "$pid"
		return 0
	fi
	return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# probe_once: 0 when the broker answers. With the Go probe this is a metadata + ApiVersions
# round trip (and it prints cluster, version and features); without it, TCP + log line.
probe_once() {
	local timeout="$1"
	if [ -x "$PING_BIN" ]; then
		"$PING_BIN" -brokers "$BROKERS" -timeout "$timeout" 2>/dev/null | sed "s/^ready after [^:]*: //"
	else
		port_open "$PORT" && grep -q 'Kafka Server started' "$LOG" 2>/dev/null && echo "answers on $BROKERS (TCP; go probe not built)"
	fi
}

render_config() {
	mkdir -p "$DIR" "$LOG_DIR"
	sed -e "s#@DATA_DIR@#$DIR#g" -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" \
		"$HERE/kafka/server.properties.in" >"$CONFIG.tmp"
	if [ -n "${RECON_KAFKA_PROXIED_PORT:-}" ] && [ -n "${RECON_KAFKA_PROXIED_ADVERTISED:-}" ]; then
		# a second listener whose clients are told to come back through a proxy (fault tests)
		sed -i -e "s#^listeners=\(.*\)#listeners=\1,PROXIED://127.0.0.1:$RECON_KAFKA_PROXIED_PORT#" \
			-e "s#^advertised.listeners=\(.*\)#advertised.listeners=\1,PROXIED://$RECON_KAFKA_PROXIED_ADVERTISED#" \
			-e "s#^listener.security.protocol.map=\(.*\)#listener.security.protocol.map=\1,PROXIED:PLAINTEXT#" "$CONFIG.tmp"
	fi
	mv "$CONFIG.tmp" "$CONFIG"
}

format_storage() {
	if [ -f "$DIR/metadata/meta.properties" ]; then
		return 0
	fi
	local id out
	if [ -s "$DIR/cluster-id" ]; then
		id="$(cat "$DIR/cluster-id")"
	else
		id="$(java "${JVM_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
		[ -n "$id" ] || die "kafka.tools.StorageTool random-uuid gave no cluster id"
		echo "$id" >"$DIR/cluster-id"
	fi
	# transaction.version=2 turns on KIP-890 (server-side transaction defence); 4.x supports it.
	if ! out="$(java "${JVM_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format \
		-t "$id" -c "$CONFIG" --feature transaction.version=2 2>&1)"; then
		echo "$out" >&2
		die "formatting storage in $DIR failed"
	fi
	say "formatted storage in $DIR (cluster $id, transaction.version=2)"
}

cmd_start() {
	local pid
	if pid="$(running_pid)"; then
		say "already running (pid $pid)"
		wait_ready "$pid"
		return 0
	fi
	rm -f "$PIDFILE"
	if port_open "$PORT" || port_open "$CONTROLLER_PORT"; then
		die "127.0.0.1:$PORT or :$CONTROLLER_PORT is in use by a process this script did not start (no live pid in $PIDFILE); stop it first"
	fi
	installed || cmd_install
	need_java
	build_ping || true
	render_config
	format_storage

	local t0
	LOG_OFFSET="$(stat -c %s "$LOG" 2>/dev/null || echo 0)"
	t0="$(date +%s%N)"
	# setsid: the broker outlives the shell (and process group) that started it.
	# shellcheck disable=SC2086
	nohup setsid java $HEAP_OPTS "${JVM_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$CONFIG" >"$STDOUT" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$PIDFILE"
	say "started $VERSION (pid $pid, heap $HEAP_OPTS, logs $LOG_DIR)"
	wait_ready "$pid" "$t0"
}

# wait_ready PID [T0]: poll until the broker answers, the process dies, or the timeout.
wait_ready() {
	local pid="$1" t0="${2:-$(date +%s%N)}" deadline=$((SECONDS + START_TIMEOUT_SECONDS)) line ms
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PIDFILE"
			show_logs
			die "broker (pid $pid) exited during startup"
		fi
		if line="$(probe_once 2s)"; then
			ms=$((($(date +%s%N) - t0) / 1000000))
			say "ready on $BROKERS after $((ms / 1000)).$(((ms % 1000) / 100)) s (pid $pid, Kafka $VERSION): $line"
			return 0
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			show_logs
			kill "$pid" 2>/dev/null || true
			rm -f "$PIDFILE"
			die "broker (pid $pid) did not answer on $BROKERS within $START_TIMEOUT_SECONDS s; stopped it"
		fi
		sleep 0.5
	done
}

cmd_stop() {
	local pid
	if ! pid="$(running_pid)"; then
		if [ -f "$PIDFILE" ]; then
			say "not running (stale pid file $PIDFILE removed)"
			rm -f "$PIDFILE"
		else
			say "not running"
		fi
		return 0
	fi
	kill -TERM "$pid"
	local deadline=$((SECONDS + STOP_TIMEOUT_SECONDS))
	while kill -0 "$pid" 2>/dev/null; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			say "pid $pid still alive after $STOP_TIMEOUT_SECONDS s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	rm -f "$PIDFILE"
	say "stopped (pid $pid)"
}

cmd_status() {
	local pid line
	if ! pid="$(running_pid)"; then
		say "not running"
		return 1
	fi
	if line="$(probe_once 5s)"; then
		say "running (pid $pid, Kafka $VERSION, $BROKERS): $line"
		return 0
	fi
	say "running (pid $pid) but not answering on $BROKERS"
	return 1
}

cmd_env() { echo "RECON_KAFKA_BROKERS=$BROKERS"; }

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*)
	echo "usage: $0 install|start|stop|status|env" >&2
	exit 2
	;;
esac
