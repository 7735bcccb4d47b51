#!/bin/sh
# /init of the lab's Linux guest; src/lab/guest/linux.ts packs it with busybox, the virtio
# modules (listed in load order in /etc/lme-modules) and the dirtier (/sbin/dirty).
# Kernel command line:
#   lme.addr=IP/PREFIX   eth0's address (the guest answers ping there)
#   lme.arp_notify=0|1   net.ipv4.conf.all.arp_notify: 1 announces the guest (gratuitous ARP)
#                        after a migration, 0 leaves the bridges' forwarding tables stale
#   lme.fill=MiB lme.dirty=MiB   read by /sbin/dirty
# Prints "ready" once eth0 is up, then "filled" and "dirtying" from the dirtier.

fail() {
  echo "lme-init: $*"
  # PID 1 must not exit: the kernel would panic and hide the message.
  while :; do sleep 3600; done
}

param() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}"; return 0 ;; esac
  done
  return 1
}

mount -t proc proc /proc || fail "cannot mount /proc"
mount -t sysfs sysfs /sys || fail "cannot mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"

addr=$(param lme.addr) || fail "no lme.addr=IP/PREFIX on the kernel command line"
arp_notify=$(param lme.arp_notify) || fail "no lme.arp_notify=0|1 on the kernel command line"
case "$arp_notify" in 0 | 1) ;; *) fail "lme.arp_notify=$arp_notify is not 0 or 1" ;; esac

while read -r module; do
  insmod "/lib/modules/$module.ko" || fail "insmod $module failed"
done < /etc/lme-modules

echo "$arp_notify" > /proc/sys/net/ipv4/conf/all/arp_notify || fail "cannot set arp_notify"
echo "$arp_notify" > /proc/sys/net/ipv4/conf/default/arp_notify

tries=0
until [ -e /sys/class/net/eth0 ]; do
  tries=$((tries + 1))
  [ "$tries" -le 100 ] || fail "no eth0 after loading $(tr '\n' ' ' < /etc/lme-modules)"
  sleep 0.1
done
ip link set lo up
ip addr add "$addr" dev eth0 || fail "cannot add address $addr to eth0"
ip link set eth0 up || fail "cannot bring eth0 up"
echo "ready"

/sbin/dirty &
wait
fail "the dirtier exited"
