#!/bin/bash
# The failures pidlock fixes, shown side by side: Debian's stock
# postgresql-15 server and the same server patched to hold postmaster.pid
# through pidlock (built by build.sh). Prints a Markdown table (the one in
# docs/postgres.md) and keeps every server log in $PGWORK/compare/.
#
#   sudo examples/postgres/compare.sh [ROUNDS]
#
# Scenarios, each run on both servers with real processes:
#  1. stale postmaster.pid naming a reused live pid: the server is SIGKILLed
#     with its children, and a process of the same user is started with the
#     same pid (through /proc/sys/kernel/ns_last_pid); then a start.
#  2. postmaster SIGKILLed and left unreaped: its parent never calls wait(),
#     so the pid stays a zombie; then a start.
#  3. two servers started at once on one data directory (over a stale file
#     left by a SIGKILL, the race that hurt in 2012), ROUNDS times (default 5):
#     how many rounds ended with exactly one server running.
#  4. postmaster.pid deleted while the server runs: the time until the
#     server has shut down (stock rechecks once a minute).
# Needs root (ns_last_pid, and to act as the server's user, $PG_USER,
# default postgres). Runs several minutes: the stock server needs up to two
# to notice the deleted file. Outside ordinary CI.
set -u

work=${PGWORK:-/var/tmp/pidlock-postgres}
user=${PG_USER:-postgres}
rounds=${1:-5}
stock_bin=${STOCK_BIN:-/usr/lib/postgresql/15/bin}
patched_bin=${PATCHED_BIN:-$work/install$work/inst/bin}
out="$work/compare"

[ "$(id -u)" -eq 0 ] || { echo "compare.sh: run as root (see the header)" >&2; exit 64; }
for bin in "$stock_bin" "$patched_bin"; do
  [ -x "$bin/postgres" ] || { echo "compare.sh: no server at $bin/postgres (run build.sh first)" >&2; exit 66; }
done

# TCP on loopback only, no Unix socket: a Unix socket's lock file
# (/tmp/.s.PGSQL.N.lock) is still PostgreSQL's own code in the patched
# server and would mix its verdicts into the data directory lock's.
server_opts="-c unix_socket_directories= -c listen_addresses=127.0.0.1"

# Runs a command as $user by exec: a server started in the background with
# it is this shell's own child, so that `wait` reaps it. (The init of some
# containers and VMs never reaps orphans: a postmaster left to it would stay
# a zombie, which kill(pid, 0) calls alive, and spoil the other scenarios.)
as_pg=(setpriv --reuid="$user" --regid="$user" --init-groups --)

# Alive, and not a zombie?
running() { [ -r "/proc/$1/stat" ] && ! awk '{ exit ($3 == "Z") ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null; }

now_ms() { date +%s%3N; }

# postmaster.pid names one of the given pids on line 1 and says "ready" on
# line 8 (both servers keep the layout); a stale file never passes.
wait_ready() {
  local d=$1 pid
  shift
  for _ in $(seq 1 600); do
    if [ "$(sed -n 8p "$d/postmaster.pid" 2>/dev/null | tr -d ' ')" = ready ]; then
      for pid in "$@"; do [ "$(head -1 "$d/postmaster.pid" 2>/dev/null)" = "$pid" ] && return 0; done
    fi
    sleep 0.1
  done
  return 1
}

# Starts a server in the background; the pid is in $server.
start_server() {
  local bin=$1 d=$2 port=$3 log=$4
  "${as_pg[@]}" "$bin/postgres" -D "$d" -p "$port" $server_opts >>"$log" 2>&1 &
  server=$!
}

# What became of a server start: "starts" or "refuses: <its FATAL line>".
outcome() {
  local pid=$1 d=$2 log=$3
  for _ in $(seq 1 600); do
    if ! running "$pid"; then
      echo "refuses: $(grep -m1 FATAL "$log" | sed 's/.*FATAL: *//')"
      return
    fi
    if [ "$(sed -n 8p "$d/postmaster.pid" 2>/dev/null | tr -d ' ')" = ready ] &&
       [ "$(head -1 "$d/postmaster.pid" 2>/dev/null)" = "$pid" ]; then
      echo "starts"
      return
    fi
    sleep 0.1
  done
  echo "neither ready nor gone after 60 s"
}

# SIGKILLs a postmaster and its children, and waits until they are gone
# (a postmaster whose parent does not reap it stays a zombie).
kill_server() {
  local pm=$1 kids pid
  kids=$(ps -o pid= --ppid "$pm" 2>/dev/null)
  kill -9 "$pm" $kids 2>/dev/null
  for pid in $pm $kids; do
    while running "$pid"; do sleep 0.05; done
  done
  wait "$pm" 2>/dev/null
}

stop_server() {
  local bin=$1 d=$2
  "${as_pg[@]}" "$bin/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null 2>&1
}

# Starts `sleep` as $user with pid $1, or fails.
spawn_with_pid() {
  local want=$1
  for _ in $(seq 1 200); do
    echo $((want - 1)) > /proc/sys/kernel/ns_last_pid
    setpriv --reuid="$user" --regid="$user" --init-groups sleep 600 &
    [ $! -eq "$want" ] && { reused=$!; return 0; }
    kill $! 2>/dev/null
    wait $! 2>/dev/null
  done
  return 1
}

scenario_reused_pid() {
  local bin=$1 d=$2 port=$3 log=$4 pm result recovery
  start_server "$bin" "$d" "$port" "$log"; pm=$server
  wait_ready "$d" "$pm" || { echo "did not start"; return; }
  kill_server "$pm"
  spawn_with_pid "$pm" || { echo "could not reuse pid $pm"; return; }
  : >"$log.1"
  start_server "$bin" "$d" "$port" "$log.1"
  result=$(outcome "$server" "$d" "$log.1")
  recovery=$(grep -m1 -o "took over lock file[^:]*\|automatic recovery in progress" "$log.1" | head -1)
  echo "file names live pid $pm (a \`sleep\` of $user): $result${recovery:+; log: \"$recovery\"}"
  running "$server" && stop_server "$bin" "$d"
  kill "$reused"; wait "$reused" 2>/dev/null
  rm -f "$d/postmaster.pid"   # the stock server's leftover, so the next scenario starts clean
}

scenario_zombie() {
  local bin=$1 d=$2 port=$3 log=$4 parent pm state result
  # A parent that never reaps: python's default SIGCHLD leaves a zombie.
  rm -f "$out/zombie.pid"
  python3 -c '
import os, sys, time
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
print(pid, flush=True)
time.sleep(100000)
' setpriv --reuid="$user" --regid="$user" --init-groups "$bin/postgres" -D "$d" -p "$port" \
      $server_opts >"$out/zombie.pid" 2>>"$log" &
  parent=$!
  while [ ! -s "$out/zombie.pid" ]; do sleep 0.1; done   # written by the parent
  pm=$(head -1 "$out/zombie.pid")
  wait_ready "$d" "$pm" || { echo "did not start"; kill "$parent"; return; }
  kill_server "$pm"
  state=$(awk '{print $3}' "/proc/$pm/stat" 2>/dev/null)
  : >"$log.2"
  start_server "$bin" "$d" "$port" "$log.2"
  result=$(outcome "$server" "$d" "$log.2")
  echo "pid $pm is a zombie (state $state): $result"
  running "$server" && stop_server "$bin" "$d"
  kill "$parent"; wait "$parent" 2>/dev/null
  rm -f "$d/postmaster.pid"
}

scenario_two_starters() {
  local bin=$1 d=$2 port=$3 log=$4 pm a b one=0 two=0 none=0 live
  start_server "$bin" "$d" "$port" "$log"; pm=$server
  wait_ready "$d" "$pm" || { echo "did not start"; return; }
  for _ in $(seq 1 "$rounds"); do
    kill_server "$pm"           # a stale file, as after a crash
    rm -f "$out/go"
    # Both wait for the same file, then exec the server at once (own ports,
    # so that only the data directory lock can keep them apart).
    "${as_pg[@]}" sh -c "while [ ! -e '$out/go' ]; do :; done; exec '$bin/postgres' -D '$d' -p $port $server_opts" >>"$log.3" 2>&1 &
    a=$!
    "${as_pg[@]}" sh -c "while [ ! -e '$out/go' ]; do :; done; exec '$bin/postgres' -D '$d' -p $((port + 1)) $server_opts" >>"$log.3" 2>&1 &
    b=$!
    sleep 0.5; touch "$out/go"
    wait_ready "$d" "$a" "$b"; sleep 3   # let a loser finish failing
    live=0; pm=""
    running "$a" && { live=$((live + 1)); pm=$a; }
    running "$b" && { live=$((live + 1)); pm="$pm $b"; }
    case $live in 1) one=$((one + 1)) ;; 2) two=$((two + 1)) ;; *) none=$((none + 1)) ;; esac
    for p in $pm; do kill_server "$p"; done
    [ -n "$pm" ] && pm=${pm%% *}
    wait "$a" "$b" 2>/dev/null
    start_server "$bin" "$d" "$port" "$log.3"; pm=$server
    wait_ready "$d" "$pm" || break
  done
  stop_server "$bin" "$d"
  echo "$rounds rounds: exactly one server $one, two servers $two, none $none"
}

scenario_deleted_file() {
  local bin=$1 d=$2 port=$3 log=$4 pm t0 t1
  start_server "$bin" "$d" "$port" "$log"; pm=$server
  wait_ready "$d" "$pm" || { echo "did not start"; return; }
  t0=$(now_ms)
  rm "$d/postmaster.pid"
  while running "$pm" && [ $(($(now_ms) - t0)) -lt 200000 ]; do sleep 0.01; done
  t1=$(now_ms)
  if running "$pm"; then
    echo "still running after 200 s"; kill_server "$pm"
  else
    echo "shut down $(( t1 - t0 )) ms after the deletion ($(grep -m1 -o 'performing immediate shutdown[^"]*' "$log" | head -1))"
  fi
  wait "$pm" 2>/dev/null
}

cd / || exit 1   # servers must not start in a folder that may go away
rm -rf "$out"; mkdir -p "$out"; chown -R "$user" "$out"
declare -A results
for flavour in stock patched; do
  if [ $flavour = stock ]; then bin=$stock_bin; port=55432; else bin=$patched_bin; port=56432; fi
  d="$out/$flavour-data"; log="$out/$flavour.log"
  "${as_pg[@]}" "$bin/initdb" -D "$d" -A trust -N >"$out/$flavour-initdb.log" 2>&1 || { echo "initdb failed: $out/$flavour-initdb.log" >&2; exit 1; }
  results[$flavour,1]=$(scenario_reused_pid "$bin" "$d" "$port" "$log")
  results[$flavour,2]=$(scenario_zombie "$bin" "$d" "$port" "$log")
  results[$flavour,3]=$(scenario_two_starters "$bin" "$d" "$port" "$log")
  results[$flavour,4]=$(scenario_deleted_file "$bin" "$d" "$port" "$log")
done

echo "| scenario | stock ($("$stock_bin/postgres" --version | awk '{print $3}')) | patched with pidlock ($("$patched_bin/postgres" --version | awk '{print $3}')) |"
echo "|---|---|---|"
names=("" "stale postmaster.pid naming a reused live pid" "postmaster SIGKILLed, left unreaped" \
       "two servers started at once on one data directory" "postmaster.pid deleted while running")
for n in 1 2 3 4; do
  echo "| ${names[$n]} | ${results[stock,$n]} | ${results[patched,$n]} |"
done
echo
echo "Logs: $out"
