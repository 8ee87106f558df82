#!/usr/bin/env bash
# A one-host Ceph cluster with a RADOS Gateway (RGW), for running the S3 test suites against a real S3
# implementation: one monitor, one bluestore OSD on a sparse file, radosgw on 127.0.0.1, all under one
# directory, no systemd. Uses Debian's packages (radosgw ceph-mon ceph-osd ceph-common uuid-runtime); it
# installs nothing itself.
#
#   scripts/ceph-rgw.sh start [DIR]   stand it up, make a user with known keys and a bucket, print the env
#   scripts/ceph-rgw.sh env [DIR]     print the env again (export lines for the test suites)
#   scripts/ceph-rgw.sh stop [DIR]    stop every daemon it started and remove DIR
#
# DIR defaults to $CEPH_RGW_DIR or /tmp/vb-ceph-rgw. Every wait polls a condition with a bounded total time
# (CEPH_RGW_TIMEOUT seconds each, 120 by default); nothing sleeps for a fixed time.
set -euo pipefail

ACTION=${1:-}
DIR=${2:-${CEPH_RGW_DIR:-/tmp/vb-ceph-rgw}}
TIMEOUT=${CEPH_RGW_TIMEOUT:-120}
CONF=$DIR/ceph.conf
ACCESS_KEY=VBTESTACCESSKEY00001
SECRET_KEY=vb-test-secret-key-for-a-local-cluster
BUCKET=volume-backups
REGION=us-east-1

die() { echo "ceph-rgw: $*" >&2; exit 1; }

usage() {
  echo "usage: scripts/ceph-rgw.sh start|stop|env [DIR]" >&2
  exit 2
}

check_packages() {
  local missing=()
  for cmd in monmaptool ceph-mon ceph-osd ceph radosgw radosgw-admin uuidgen curl; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "ceph-rgw: missing ${missing[*]}: install Debian's packages first:" >&2
    echo "  apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common uuid-runtime curl" >&2
    exit 2
  fi
}

free_port() {
  node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# wait_for WHAT COMMAND...: run COMMAND until it succeeds, at most $TIMEOUT seconds in all.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + TIMEOUT)) delay=0.1
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "ceph-rgw: $what did not happen within ${TIMEOUT} s; logs in $DIR/log:" >&2
      tail -n 20 "$DIR"/log/*.log >&2 2>/dev/null || true
      return 1
    fi
    sleep "$delay"
    # Back off a little: the ceph CLI itself takes a fraction of a second per call.
    case $delay in 0.1) delay=0.2 ;; 0.2) delay=0.5 ;; esac
  done
}

ceph_cli() { timeout 30 ceph -c "$CONF" --connect-timeout 10 "$@"; }

osd_up() { ceph_cli osd dump | grep -q '^osd\.[0-9]* up'; }
rgw_answers() { curl -sf -o /dev/null "http://127.0.0.1:$RGW_PORT/"; }
# The user exists once RGW's pools are made (radosgw makes them when it starts).
user_made() {
  timeout 30 radosgw-admin -c "$CONF" user info --uid vb-test >/dev/null 2>&1 ||
    timeout 30 radosgw-admin -c "$CONF" user create --uid vb-test --display-name "volume-backup tests" \
      --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY"
}
# A bucket made through S3 itself (curl's SigV4 needs the payload hash header for RGW).
bucket_made() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS_KEY:$SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "http://127.0.0.1:$RGW_PORT/$BUCKET")
  [ "$code" = 200 ] || [ "$code" = 409 ]
}

print_env() {
  [ -f "$DIR/env" ] || die "no cluster in $DIR (run: scripts/ceph-rgw.sh start $DIR)"
  cat "$DIR/env"
}

start() {
  check_packages
  if [ -f "$DIR/env" ]; then die "a cluster already runs in $DIR: stop it first (scripts/ceph-rgw.sh stop $DIR)"; fi
  mkdir -p "$DIR"/{run,log,mon,osd,rgw}
  # A start that fails half-way leaves nothing running.
  trap 'echo "ceph-rgw: start failed; stopping what was started" >&2; stop' EXIT
  local fsid mon2 mon1 osd_uuid osd_id started=$SECONDS
  fsid=$(uuidgen)
  mon2=$(free_port); mon1=$(free_port); RGW_PORT=$(free_port)
  while [ "$mon1" = "$mon2" ]; do mon1=$(free_port); done
  while [ "$RGW_PORT" = "$mon2" ] || [ "$RGW_PORT" = "$mon1" ]; do RGW_PORT=$(free_port); done
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# radosgw's default (secure) cannot work without auth: it would hang, then fail to fetch the mon config.
ms_mon_client_mode = crc
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
run_dir = $DIR/run
log_file = $DIR/log/\$name.log
admin_socket = $DIR/run/\$name.asok
pid_file = $DIR/run/\$name.pid
[mon]
mon_data = $DIR/mon/\$name
[osd]
osd_data = $DIR/osd/\$id
osd_objectstore = bluestore
# bluestore links osd_data/block to this sparse file.
bluestore_block_path = $DIR/osd/\$id/block.img
bluestore_block_create = true
bluestore_block_size = 21474836480
bluestore_cache_size = 134217728
osd_memory_target = 939524096
[client.rgw.a]
# tcp_nodelay: without it each small request or reply waits ~40 ms (Nagle against the client's delayed ACK).
rgw_frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw_data = $DIR/rgw
EOF
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" >"$DIR/log/mkfs-mon.log" 2>&1 || { cat "$DIR/log/mkfs-mon.log" >&2; die "ceph-mon --mkfs failed"; }
  ceph-mon -c "$CONF" -i a 2>>"$DIR/log/daemons.log"
  wait_for "the monitor answering" ceph_cli mon stat
  osd_uuid=$(uuidgen)
  osd_id=$(ceph_cli osd new "$osd_uuid")
  mkdir -p "$DIR/osd/$osd_id"
  ceph-osd -c "$CONF" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/mkfs-osd.log" 2>&1 || { cat "$DIR/log/mkfs-osd.log" >&2; die "ceph-osd --mkfs failed"; }
  ceph-osd -c "$CONF" -i "$osd_id" 2>>"$DIR/log/daemons.log"
  wait_for "the OSD coming up" osd_up
  radosgw -c "$CONF" -n client.rgw.a 2>>"$DIR/log/daemons.log"
  wait_for "radosgw answering on 127.0.0.1:$RGW_PORT" rgw_answers
  wait_for "the test user" user_made
  wait_for "the bucket $BUCKET" bucket_made
  cat >"$DIR/env" <<EOF
export S3_TEST_STORE=rgw
export S3_TEST_ENDPOINT=http://127.0.0.1:$RGW_PORT
export S3_TEST_REGION=$REGION
export S3_TEST_ACCESS_KEY_ID=$ACCESS_KEY
export S3_TEST_SECRET_ACCESS_KEY=$SECRET_KEY
export S3_TEST_BUCKET=$BUCKET
EOF
  trap - EXIT
  echo "ceph-rgw: RGW on http://127.0.0.1:$RGW_PORT in $((SECONDS - started)) s (cluster in $DIR)" >&2
  print_env
}

stop() {
  [ -d "$DIR" ] || return 0
  [ -f "$CONF" ] || die "$DIR has no ceph.conf: not a cluster this script made, left alone"
  local pids=() pid
  # The gateway first, the monitor last: each daemon's own pid file, never a name.
  for f in "$DIR"/run/client.rgw.a.pid "$DIR"/run/osd.*.pid "$DIR"/run/mon.a.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  if [ ${#pids[@]} -gt 0 ]; then
    if ! TIMEOUT=30 wait_for "the daemons exiting" all_gone "${pids[@]}"; then
      kill -KILL "${pids[@]}" 2>/dev/null || true
    fi
  fi
  rm -rf "$DIR"
}

# all_gone PID...: true once none of the processes exists any more.
all_gone() {
  local p
  for p in "$@"; do kill -0 "$p" 2>/dev/null && return 1; done
  return 0
}

case $ACTION in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) usage ;;
esac
