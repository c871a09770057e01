#!/bin/busybox sh
# /init of the lab's guests: PID 1 of a busybox-only initramfs (lab/lab.py packs it).
#
# What the lab needs from a guest, and nothing more:
#   - a banner, then "<name> heartbeat <n>" on the serial console every second, so that a
#     console (and the lab's readiness check, which reads the console log) sees it alive;
#   - a shell on that console, respawned if it exits (PID 1 must never exit: the kernel
#     would panic);
#   - a graceful shutdown: libvirt's shutdown presses the ACPI power button, and without a
#     listener nothing happens (no acpid, no systemd). We read the button's input device
#     and power off on its first event.
# The guest's name comes from the kernel command line: ovmlab.name=<name>.

/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin /usr/bin /usr/sbin /root
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Not mounted for us: CONFIG_DEVTMPFS_MOUNT only applies after a root filesystem is mounted.
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts 2>/dev/null

name=$(sed -n 's/.*ovmlab\.name=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$name" ] || name=guest
hostname "$name"

# Modules the Debian kernel builds as modules but the lab needs (lab.py puts them here, in
# dependency order): evdev for the power button, virtio for hot-plugged disks.
if [ -f /lib/modules/load-order ]; then
    while read -r module; do
        insmod "/lib/modules/$module" 2>/dev/null
    done </lib/modules/load-order
fi

# The power button: the input device named "Power Button". An evdev read needs room for a
# whole event (24 bytes), hence bs=24.
for event in /sys/class/input/event*; do
    [ -e "$event/device/name" ] || continue
    if grep -q "Power Button" "$event/device/name"; then
        (
            dd if="/dev/input/${event##*/}" bs=24 count=1 >/dev/null 2>&1
            echo "$name: power button pressed, powering off" >/dev/ttyS0
            sync
            poweroff -f
        ) &
    fi
done

echo "ovmlab guest $name up: $(uname -r), $(sed -n 's/MemTotal: *//p' /proc/meminfo)" >/dev/ttyS0

(
    n=0
    while :; do
        n=$((n + 1))
        echo "$name heartbeat $n"
        sleep 1
    done
) >/dev/ttyS0 2>&1 &

export HOME=/root PS1="$name# "
while :; do
    # cttyhack makes the console our controlling terminal (job control, ^C).
    setsid cttyhack sh -l
    sleep 1
done
