#!/bin/sh
# qemu-ga's --fsfreeze-hook for vmsnap's test guest: qemu-ga runs it with "freeze" before it
# freezes the filesystems and with "thaw" after it thaws them; a non-zero exit on "freeze" makes
# the freeze fail with the guest left thawed. The mode comes from vmsnap.hook= on the kernel
# command line (written to /run/vmsnap-hook-mode by /init):
#   ok    succeed
#   fail  exit 1 on freeze (an application that refuses to quiesce)
#   hang  never return from freeze (an application stuck quiescing: the freeze call blocks)
# qemu-ga points the hook's output at /dev/null, so it reports on the console itself, with the
# guest uptime: taken just before FIFREEZE on "freeze" and just after FITHAW on "thaw", it
# brackets the time the guest's filesystems were frozen on the writers' clock.
mode="$(cat /run/vmsnap-hook-mode 2>/dev/null || echo ok)"
read -r up _ </proc/uptime
echo "vmsnap-hook: $1 mode=$mode up=$up" >/dev/console
if [ "$1" = freeze ]; then
  case "$mode" in
    fail) exit 1 ;;
    hang) while :; do sleep 3600; done ;;
  esac
fi
exit 0
