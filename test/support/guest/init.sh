#!/bin/sh
# /init of vmsnap's tiny test guest (busybox sh as pid 1; no udev, no systemd).
# Brings up what a snapshot test needs to observe: every virtio disk mounted as ext4 under
# /mnt/<disk>, the QEMU guest agent on its virtio port, and one writer per disk appending an
# fsync'd, numbered line every 0.2 s to /mnt/<disk>/vmsnap-writer.log and echoing it on the
# serial console, so the host sees the writer stall while the guest is frozen and resume after.
#
# Kernel command line knobs (set by the host's domain XML builder):
#   vmsnap.agent=on|hang|off   hang: SIGSTOP qemu-ga once it is up (an agent that stops answering)
#   vmsnap.hook=ok|fail|hang|none   what the fsfreeze hook does on "freeze" (see
#                              fsfreeze-hook.sh); none runs qemu-ga without a hook
#   vmsnap.dirty=<MiB>         fill that much RAM (a tmpfs) with random data before "ready", so a
#                              RAM image is not mostly zero pages (0: none)
#   vmsnap.churn=<MiB>         then keep rewriting that much of it in place, 10 times a second, so
#                              live RAM copies see pages dirtied while they run (0: none)
# Every line the host waits for starts with "vmsnap-"; the formats are parsed by console.ts.

/bin/busybox mkdir -p /proc /sys /dev /run /tmp /mnt /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1

# Guest uptime on every line, so boot phases can be timed from the console alone.
say() {
  read -r up _ </proc/uptime
  echo "vmsnap-guest: $* (uptime $up)"
}

agent=on
hook=ok
dirty=0
churn=0
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vmsnap.agent=*) agent="${arg#vmsnap.agent=}" ;;
    vmsnap.hook=*) hook="${arg#vmsnap.hook=}" ;;
    vmsnap.dirty=*) dirty="${arg#vmsnap.dirty=}" ;;
    vmsnap.churn=*) churn="${arg#vmsnap.churn=}" ;;
  esac
done
echo "$hook" >/run/vmsnap-hook-mode

# Modules in dependency order, as computed on the host (modules.ts).
for m in $(cat /lib/modules/load.order); do
  insmod "/lib/modules/$m.ko" || say "insmod $m failed"
done

# Device nodes can trail the driver's probe by a moment: wait for each block device's node.
waitfor() {
  i=0
  while [ ! -e "$1" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -e "$1" ]
}

disks=""
for sys in /sys/block/vd*; do
  [ -e "$sys" ] || continue
  d="${sys##*/}"
  if waitfor "/dev/$d" && mkdir -p "/mnt/$d" && mount -t ext4 "/dev/$d" "/mnt/$d"; then
    say "mounted /dev/$d on /mnt/$d"
    disks="$disks $d"
  else
    say "cannot mount /dev/$d"
  fi
done

# udev would make these links; qemu-ga opens /dev/virtio-ports/<name>.
mkdir -p /dev/virtio-ports
for port in /sys/class/virtio-ports/*; do
  [ -e "$port/name" ] || continue
  name="$(cat "$port/name")"
  [ -n "$name" ] && ln -sf "/dev/${port##*/}" "/dev/virtio-ports/$name"
done

channel=/dev/virtio-ports/org.qemu.guest_agent.0
agent_state=off
if [ "$agent" = off ]; then
  say "agent disabled"
elif [ ! -e "$channel" ]; then
  say "no agent channel"
  agent_state=absent
else
  # vmsnap.hook=none: qemu-ga without a hook (freeze and thaw are the ioctls alone).
  hook_option=--fsfreeze-hook=/usr/local/sbin/fsfreeze-hook
  [ "$hook" = none ] && hook_option=
  LD_LIBRARY_PATH=/lib/x86_64-linux-gnu /usr/sbin/qemu-ga --method=virtio-serial --path="$channel" \
    --statedir=/run --pidfile=/run/qemu-ga.pid --logfile=/run/qemu-ga.log \
    ${hook_option:+"$hook_option"} &
  ga=$!
  say "agent started pid=$ga"
  agent_state=on
  if [ "$agent" = hang ]; then
    sleep 0.5
    kill -STOP "$ga"
    say "agent stopped pid=$ga"
    agent_state=hung
  fi
fi

# One writer per disk. t = uptime before the append, w = uptime once the line is fsync'd: while
# the filesystem is frozen the append blocks, so w - t is the stall the guest saw.
writer() {
  d="$1"
  log="/mnt/$d/vmsnap-writer.log"
  seq=0
  # Continue the sequence of an earlier boot of the same disk (e.g. a restored snapshot).
  if [ -s "$log" ]; then
    last="$(tail -n 1 "$log" | sed -n 's/.* seq=\([0-9]*\) .*/\1/p')"
    [ -n "$last" ] && seq="$last"
  fi
  while :; do
    seq=$((seq + 1))
    read -r t _ </proc/uptime
    echo "vmsnap-writer $d seq=$seq t=$t" >>"$log"
    sync "$log"
    read -r w _ </proc/uptime
    echo "vmsnap-writer $d seq=$seq t=$t w=$w"
    sleep 0.2
  done
}

for d in $disks; do
  writer "$d" &
done

# RAM dirtier: one 4 MiB block from the kernel's RNG (urandom is slow under TCG), copied into a
# tmpfs until <dirty> MiB are filled. Nothing between the guest's RAM and the image compresses or
# deduplicates pages, so copies cost the image as much as fresh random data would.
if [ "$dirty" -gt 0 ]; then
  mkdir -p /run/dirty
  mount -t tmpfs -o "size=$((dirty + 8))m" tmpfs /run/dirty
  dd if=/dev/urandom of=/run/dirty/seed bs=1M count=4 2>/dev/null
  n=4
  while [ $n -lt "$dirty" ]; do
    cat /run/dirty/seed >"/run/dirty/fill-$n"
    n=$((n + 4))
  done
  set -- $(grep -E '^(MemTotal|MemAvailable):' /proc/meminfo)
  say "dirtied ${n} MiB total=$(($2 / 1024)) available=$(($5 / 1024))"
  if [ "$churn" -gt 0 ]; then
    (
      while :; do
        c=4
        while [ $c -le "$churn" ] && [ -e "/run/dirty/fill-$c" ]; do
          dd if=/run/dirty/seed of="/run/dirty/fill-$c" bs=1M conv=notrunc 2>/dev/null
          c=$((c + 4))
        done
        sleep 0.1
      done
    ) &
    say "churning ${churn} MiB every 0.1 s"
  fi
fi

disk_list="$(echo $disks | tr ' ' ',')"
say "ready disks=${disk_list:-none} agent=$agent_state hook=$hook"

# As pid 1, keep reaping whatever gets orphaned to us; never exit (the kernel would panic).
while :; do
  wait
  sleep 60
done
