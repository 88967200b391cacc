#!/usr/bin/env bash
# deploy/local/clickhouse.sh: install, start, stop and describe recon's local
# ClickHouse (native protocol on 127.0.0.1:19000, HTTP on 127.0.0.1:18123).
#
#   clickhouse.sh install   apt-get install clickhouse-server/-client if missing (root, Debian)
#   clickhouse.sh start     install if missing, start in the background (idempotent), wait for SELECT version()
#   clickhouse.sh stop      stop the server this script started (by its pid file only)
#   clickhouse.sh status    say whether it runs and answers
#   clickhouse.sh env       print RECON_CLICKHOUSE_ADDR=127.0.0.1:19000
#
# State lives in ${RECON_SERVICES_DIR:-/tmp/recon-services}/clickhouse.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERVICES_DIR="${RECON_SERVICES_DIR:-/tmp/recon-services}"
DIR="$SERVICES_DIR/clickhouse"
PIDFILE="$DIR/clickhouse.pid"
CONFIG="$DIR/config.xml"
LOG="$DIR/log/clickhouse-server.log"
ERRLOG="$DIR/log/clickhouse-server.err.log"
STDOUT="$DIR/log/stdout.log"
TCP_PORT="${RECON_CLICKHOUSE_PORT:-19000}"
HTTP_PORT="${RECON_CLICKHOUSE_HTTP_PORT:-18123}"
START_TIMEOUT_SECONDS="${RECON_CLICKHOUSE_START_TIMEOUT_SECONDS:-60}"

die() { echo "clickhouse.sh: $*" >&2; exit 1; }

server_bin() {
	if [ -x /usr/sbin/clickhouse-server ]; then echo /usr/sbin/clickhouse-server
	elif command -v clickhouse-server >/dev/null 2>&1; then command -v clickhouse-server
	elif [ -x /usr/bin/clickhouse ]; then echo "/usr/bin/clickhouse server"
	else return 1; fi
}

client_bin() {
	if command -v clickhouse-client >/dev/null 2>&1; then command -v clickhouse-client
	elif [ -x /usr/bin/clickhouse ]; then echo "/usr/bin/clickhouse client"
	else return 1; fi
}

installed() { server_bin >/dev/null && client_bin >/dev/null; }

cmd_install() {
	if installed; then
		echo "clickhouse: already installed ($(server_bin))"
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "install needs root (apt-get install clickhouse-server clickhouse-client); run as root or install it yourself"
	command -v apt-get >/dev/null 2>&1 || die "install needs apt-get (Debian/Ubuntu); install ClickHouse yourself"
	if ! apt-cache show clickhouse-server >/dev/null 2>&1; then
		apt-get update
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y clickhouse-server clickhouse-client
	installed || die "clickhouse-server still missing after apt-get install"
	echo "clickhouse: installed ($(server_bin))"
}

running_pid() {
	[ -f "$PIDFILE" ] || return 1
	local pid
	pid="$(cat "$PIDFILE" 2>/dev/null || true)"
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

query() { # query SQL
	local client
	client="$(client_bin)" || return 1
	# shellcheck disable=SC2086
	$client --host 127.0.0.1 --port "$TCP_PORT" --query "$1" 2>/dev/null
}

render_config() {
	mkdir -p "$DIR/data" "$DIR/tmp" "$DIR/user_files" "$DIR/format_schemas" "$DIR/log"
	sed -e "s|@DIR@|$DIR|g" -e "s|@TCP_PORT@|$TCP_PORT|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" -e "s|@INTERSERVER_PORT@|${RECON_CLICKHOUSE_INTERSERVER_PORT:-19009}|g" "$HERE/clickhouse/config.xml.in" >"$CONFIG"
}

fail_with_logs() {
	echo "clickhouse.sh: $*" >&2
	for f in "$ERRLOG" "$STDOUT" "$LOG"; do
		if [ -s "$f" ]; then echo "--- tail $f" >&2; tail -n 30 "$f" >&2; fi
	done
	exit 1
}

cmd_start() {
	local pid
	if pid="$(running_pid)"; then
		echo "clickhouse: already running (pid $pid), version $(query 'SELECT version()' || echo '?') on 127.0.0.1:$TCP_PORT"
		return 0
	fi
	installed || cmd_install
	render_config
	local server
	server="$(server_bin)"
	# A plain background process: Debian's package has no usable service here.
	# setsid detaches it from this shell's process group so the caller's ^C
	# does not stop it; only "stop" does, by pid.
	# shellcheck disable=SC2086
	(cd "$DIR" && exec setsid $server --config-file="$CONFIG" >"$STDOUT" 2>&1 </dev/null) &
	pid=$!
	echo "$pid" >"$PIDFILE"
	local deadline=$((SECONDS + START_TIMEOUT_SECONDS)) version=""
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PIDFILE"
			fail_with_logs "clickhouse-server exited during start-up"
		fi
		if version="$(query 'SELECT version()')" && [ -n "$version" ]; then
			echo "clickhouse: started (pid $pid), version $version on 127.0.0.1:$TCP_PORT (http $HTTP_PORT), data in $DIR"
			return 0
		fi
		sleep 0.5
	done
	fail_with_logs "clickhouse-server (pid $pid) did not answer SELECT version() within ${START_TIMEOUT_SECONDS}s"
}

cmd_stop() {
	local pid
	if ! pid="$(running_pid)"; then
		rm -f "$PIDFILE"
		echo "clickhouse: not running"
		return 0
	fi
	kill "$pid"
	for _ in $(seq 1 60); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; echo "clickhouse: stopped (pid $pid)"; return 0; }
		sleep 0.5
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$PIDFILE"
	echo "clickhouse: killed (pid $pid) after 30s"
}

cmd_status() {
	local pid version
	if pid="$(running_pid)"; then
		if version="$(query 'SELECT version()')"; then
			echo "clickhouse: running (pid $pid), version $version on 127.0.0.1:$TCP_PORT"
			return 0
		fi
		echo "clickhouse: process $pid alive but not answering on 127.0.0.1:$TCP_PORT"
		return 1
	fi
	echo "clickhouse: not running"
	return 3
}

cmd_env() { echo "RECON_CLICKHOUSE_ADDR=127.0.0.1:$TCP_PORT"; }

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
