#!/bin/sh
# /init of the harness initramfs: mount the pseudo file systems and hand over
# to the runner, which powers the machine off through isa-debug-exit.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
ln -sf /proc/self/fd /dev/fd 2>/dev/null
ln -sf /proc/mounts /etc/mtab 2>/dev/null
case " $(cat /proc/cmdline) " in
*" fh.probe=1 "*) exec /bin/fh-guest exit 16 ;;
esac
exec /bin/fh-guest run --plan /harness/plan.json
