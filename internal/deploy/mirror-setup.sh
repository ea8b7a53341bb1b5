#!/bin/sh
# mirrord mirror set-up: run by cloud-init on the mirror VM (user-data of
# deploy/heat/mirror.yaml and of `mirrord cloud-init mirror`, which carry
# this same script). It mounts the data volume (formatting it only when it
# holds nothing), installs the mirrord package, writes
# /etc/mirrord/mirrord.yaml and a generated token, enables and starts the
# service, joins Consul when asked, runs the first sync and promotes it to
# the channel. Its inputs are /etc/mirrord/setup.env (settings) and
# /etc/mirrord/sources.yaml (the sources part of mirrord.yaml). Re-running
# it is harmless: nothing is formatted, generated or synced twice; a
# changed config restarts the service.
set -eu

SETUP_ENV=${MIRRORD_SETUP_ENV:-/etc/mirrord/setup.env}
[ -r "$SETUP_ENV" ] || { echo "mirrord-setup: $SETUP_ENV is missing" >&2; exit 1; }
. "$SETUP_ENV"
: "${MIRRORD_CHANNEL:=production}" "${MIRRORD_LISTEN:=0.0.0.0:8080}"
: "${MIRRORD_PACKAGE_URL:=}" "${MIRRORD_CONSUL_JOIN:=}" "${MIRRORD_VOLUME_ID:=}"
: "${MIRRORD_DEVICE:=}" "${MIRRORD_PUBLIC_URL:=}"

ETC=/etc/mirrord
CONF=$ETC/mirrord.yaml
DATA=/var/lib/mirrord
PORT=${MIRRORD_LISTEN##*:}
LOCAL=http://127.0.0.1:$PORT

log() { echo "mirrord-setup: $*"; }
die() { echo "mirrord-setup: $*" >&2; exit 1; }
as_mirrord() { runuser -u mirrord -- env HOME="$DATA" mirrord --config "$CONF" "$@"; }

# device: the data volume's block device, or nothing when there is none.
device() {
  if [ -n "$MIRRORD_DEVICE" ]; then echo "$MIRRORD_DEVICE"; return 0; fi
  [ -n "$MIRRORD_VOLUME_ID" ] || return 0
  short=$(printf %s "$MIRRORD_VOLUME_ID" | cut -c1-20)
  i=0
  while [ "$i" -lt 300 ]; do
    for d in "/dev/disk/by-id/virtio-$short" "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_$short" \
      "/dev/disk/by-id/scsi-SQEMU_QEMU_HARDDISK_$MIRRORD_VOLUME_ID"; do
      if [ -b "$d" ]; then readlink -f "$d"; return 0; fi
    done
    sleep 1
    i=$((i + 1))
  done
  die "volume $MIRRORD_VOLUME_ID did not appear under /dev/disk/by-id within 300s (is it attached?)"
}

# mount_volume: mount the volume at $DATA, formatting it only when blkid
# finds neither a filesystem nor a partition table on it.
mount_volume() {
  dev=$(device)
  if [ -z "$dev" ]; then log "no data volume: $DATA stays on the root disk"; return 0; fi
  [ -e "$dev" ] || die "data volume $dev does not exist"
  fstype=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)
  pttype=$(blkid -p -o value -s PTTYPE "$dev" 2>/dev/null || true)
  if [ -n "$pttype" ] && [ -z "$fstype" ]; then
    die "$dev holds a $pttype partition table and no filesystem: not formatting it; give MIRRORD_DEVICE a partition"
  fi
  if [ -z "$fstype" ]; then
    log "formatting the empty volume $dev (ext4)"
    mkfs.ext4 -q -F -L mirrord-data "$dev"
    fstype=ext4
  else
    log "$dev holds $fstype: keeping it"
  fi
  uuid=$(blkid -p -o value -s UUID "$dev")
  mkdir -p "$DATA"
  if ! grep -q "^UUID=$uuid[[:space:]]" /etc/fstab 2>/dev/null; then
    echo "UUID=$uuid $DATA $fstype defaults,nofail 0 2" >>/etc/fstab
    log "added $DATA to /etc/fstab"
  fi
  if mountpoint -q "$DATA"; then
    log "$DATA is mounted"
  else
    mount -t "$fstype" "$dev" "$DATA"
    mountpoint -q "$DATA" || die "mounting $dev at $DATA failed"
    log "mounted $dev at $DATA"
  fi
}

# install_package: the .deb or .rpm at MIRRORD_PACKAGE_URL, or the mirrord
# package of the configured repositories when it is empty.
install_package() {
  url=$MIRRORD_PACKAGE_URL
  if [ -z "$url" ]; then
    if command -v mirrord >/dev/null 2>&1; then log "mirrord is installed"; return 0; fi
    if command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q mirrord
    else
      dnf install -y mirrord
    fi
    return 0
  fi
  mkdir -p /var/cache/mirrord-setup
  case $url in
    *.deb) pkg=/var/cache/mirrord-setup/mirrord.deb ;;
    *.rpm) pkg=/var/cache/mirrord-setup/mirrord.rpm ;;
    *) die "package_url $url: want a .deb or .rpm URL" ;;
  esac
  curl -fsSL --retry 5 -o "$pkg.new" "$url" || die "downloading the package from $url failed"
  mv -f "$pkg.new" "$pkg"
  case $pkg in
    *.deb) DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold "$pkg" ;;
    *) dnf install -y "$pkg" ;;
  esac
  getent passwd mirrord >/dev/null || die "the package did not create the mirrord user"
}

# put FILE MODE: install standard input as FILE (root:mirrord) when it
# changed; sets changed=1 then.
put() {
  cat >"$1.new"
  chown root:mirrord "$1.new"
  chmod "$2" "$1.new"
  if [ -f "$1" ] && cmp -s "$1.new" "$1"; then rm -f "$1.new"; return 0; fi
  mv -f "$1.new" "$1"
  changed=1
  log "wrote $1"
}

# write_config: the token (generated once) and mirrord.yaml.
write_config() {
  if [ ! -s "$ETC/token" ]; then
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' | put "$ETC/token" 0640
    log "generated the API token in $ETC/token"
  fi
  url=$MIRRORD_PUBLIC_URL
  if [ -z "$url" ]; then
    addr=$(hostname -I 2>/dev/null | cut -d' ' -f1)
    [ -n "$addr" ] || addr=$(hostname)
    url=http://$addr:$PORT
  fi
  install -d -o mirrord -g mirrord -m 0750 "$DATA"
  [ -r "$ETC/sources.yaml" ] || die "$ETC/sources.yaml (the sources) is missing"
  {
    echo "# Written by mirrord-setup from $ETC/setup.env and $ETC/sources.yaml;"
    echo "# edit those and re-run /usr/local/sbin/mirrord-setup."
    echo "data_dir: $DATA"
    echo "listen: $MIRRORD_LISTEN"
    echo "public_url: $url"
    echo "auth: {token_file: $ETC/token}"
    if [ -n "$MIRRORD_CONSUL_JOIN" ]; then echo "consul: {address: $(consul_address)}"; fi
    cat "$ETC/sources.yaml"
  } | put "$CONF" 0640
  PUBLIC_URL=$url
}

# consul_address: the Consul agent mirrord registers with. With a local
# consul binary, that agent joins MIRRORD_CONSUL_JOIN; without one mirrord
# talks to MIRRORD_CONSUL_JOIN itself (port 8500 unless given).
consul_address() {
  if command -v consul >/dev/null 2>&1; then echo 127.0.0.1:8500; return 0; fi
  case $MIRRORD_CONSUL_JOIN in
    *:*) echo "$MIRRORD_CONSUL_JOIN" ;;
    *) echo "$MIRRORD_CONSUL_JOIN:8500" ;;
  esac
}

join_consul() {
  [ -n "$MIRRORD_CONSUL_JOIN" ] && command -v consul >/dev/null 2>&1 || return 0
  mkdir -p /etc/consul.d
  printf '{"retry_join": ["%s"]}\n' "${MIRRORD_CONSUL_JOIN%:*}" >/etc/consul.d/mirrord-join.json.new
  if cmp -s /etc/consul.d/mirrord-join.json.new /etc/consul.d/mirrord-join.json 2>/dev/null; then
    rm -f /etc/consul.d/mirrord-join.json.new
  else
    mv -f /etc/consul.d/mirrord-join.json.new /etc/consul.d/mirrord-join.json
    log "the local Consul agent joins $MIRRORD_CONSUL_JOIN"
    if [ -d /run/systemd/system ]; then systemctl restart consul; fi
  fi
}

# start_service: enable and (re)start mirrord under systemd; without a
# running systemd (a container, a chroot) start `mirrord serve` in the
# background. Then wait for /healthz.
start_service() {
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable mirrord.service
    if [ "$changed" = 1 ]; then systemctl restart mirrord.service; else systemctl start mirrord.service; fi
  else
    systemctl enable mirrord.service 2>/dev/null || true
    pid=$(cat /run/mirrord.pid 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      [ "$changed" = 1 ] || { log "mirrord serve runs (pid $pid)"; return 0; }
      kill "$pid"
    fi
    log "systemd is not running: starting mirrord serve in the background (log /var/log/mirrord.log)"
    runuser -u mirrord -- env HOME="$DATA" mirrord --config "$CONF" serve </dev/null >>/var/log/mirrord.log 2>&1 &
    echo $! >/run/mirrord.pid
  fi
  i=0
  until curl -fsS -o /dev/null "$LOCAL/healthz" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 120 ] || die "mirrord did not answer $LOCAL/healthz within 120s (journalctl -u mirrord)"
    sleep 1
  done
}

# first_snapshot: sync and promote, unless the channel exists already.
first_snapshot() {
  if curl -fsS -o /dev/null "$LOCAL/api/v1/channels/$MIRRORD_CHANNEL" 2>/dev/null; then
    log "channel $MIRRORD_CHANNEL exists: no first sync"
    return 0
  fi
  log "first sync"
  id=$(as_mirrord sync) || die "the first sync failed (see above): fix $ETC/sources.yaml and re-run $0"
  as_mirrord snapshot promote "$id" "$MIRRORD_CHANNEL"
  i=0
  until curl -fsS -o /dev/null "$LOCAL/channels/$MIRRORD_CHANNEL/bootstrap.sh" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 60 ] || die "mirrord does not serve $LOCAL/channels/$MIRRORD_CHANNEL/ 30s after the promotion"
    sleep 0.5
  done
  log "snapshot $id is channel $MIRRORD_CHANNEL: $PUBLIC_URL/channels/$MIRRORD_CHANNEL/bootstrap.sh"
}

changed=0
mount_volume
install_package
write_config
join_consul
start_service
first_snapshot
log "done: $PUBLIC_URL"
