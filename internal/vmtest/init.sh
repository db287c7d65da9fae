#!/bin/busybox sh
# /init of the VM lane's guest (packed by run.sh). Stage 1 moves the root from the initramfs into a
# tmpfs: pivot_root refuses the initramfs root, and container tests pivot. Stage 2 mounts the
# pseudo-filesystems and a pure cgroup2 hierarchy, runs every test binary listed in /libjail/tests
# from its package directory, prints the marker line carrying the result, and powers off.
bb=/bin/busybox

fail() {
	echo "LIBJAIL-VM: $*"
	echo "LIBJAIL-VM-RESULT: 1"
	$bb sync
	$bb poweroff -f
}

if [ "$1" != stage2 ]; then
	$bb mount -t proc proc /proc && read -r up _ </proc/uptime && $bb umount /proc
	$bb mount -t tmpfs -o mode=0755 root /newroot || fail "cannot mount a tmpfs root"
	for f in /*; do
		[ "$f" = /newroot ] || $bb cp -a "$f" /newroot/ || fail "cannot copy $f to the tmpfs root"
	done
	# If switch_root cannot run, pid 1 exits, the kernel panics and qemu stops (panic=-1,
	# -no-reboot): the host then reports the missing result marker.
	# shellcheck disable=SC2093
	exec $bb switch_root /newroot /init stage2 "$up"
fi

export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp LIBJAIL_VM=1
$bb --install -s
mount -t proc proc /proc || fail "mount proc"
echo "LIBJAIL-VM-BOOTED: uptime ${2:-?}s"
mount -t sysfs sysfs /sys || fail "mount sysfs"
mount -t devtmpfs devtmpfs /dev || fail "mount devtmpfs"
for m in $(cat /libjail/modules); do
	insmod "/lib/modules/$m.ko" || echo "LIBJAIL-VM: cannot load kernel module $m"
done
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
ln -sf pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777 shm /dev/shm
# /tmp on the ext4 scratch disk (254:0), like the host's /tmp on its ext4 root disk.
if mount -t ext4 /dev/vda /tmp; then chmod 1777 /tmp; else
	echo "LIBJAIL-VM: no ext4 disk at /dev/vda, /tmp is a tmpfs"
	mount -t tmpfs -o mode=1777 tmp /tmp
fi
mount -t tmpfs -o mode=0755 run /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup || fail "mount cgroup2"
[ ! -d /sys/fs/bpf ] || mount -t bpf bpf /sys/fs/bpf
dmesg -n 1 # kernel messages (OOM kills the tests provoke) would interleave with test output
hostname -F /etc/hostname
ip link set lo up 2>/dev/null

rc=0
# Enable every controller the kernel offers; the lane promises at least these six.
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
	echo "+$c" >/sys/fs/cgroup/cgroup.subtree_control || echo "LIBJAIL-VM: cannot enable controller $c"
done
enabled=$(cat /sys/fs/cgroup/cgroup.subtree_control)
for c in cpu cpuset memory pids io hugetlb; do
	case " $enabled " in *" $c "*) ;; *) echo "LIBJAIL-VM: controller $c missing"; rc=1 ;; esac
done
echo "LIBJAIL-VM: kernel $(uname -r), cgroup2 controllers: $enabled"

run="" timeout=10m shell=""
set -f
for w in $(cat /proc/cmdline); do
	case $w in
	libjail.run=*) run=${w#libjail.run=} ;;
	libjail.testtimeout=*) timeout=${w#libjail.testtimeout=} ;;
	libjail.shell=1) shell=1 ;;
	esac
done
set +f
[ -n "$LIBJAIL_PROBE" ] || [ ! -x /libjail/bin/libjail-probe ] || export LIBJAIL_PROBE=/libjail/bin/libjail-probe
[ -n "$LIBJAIL_ESCAPE" ] || [ ! -x /libjail/bin/libjail-escape ] || export LIBJAIL_ESCAPE=/libjail/bin/libjail-escape

summary=""
while read -r dir bin; do
	echo "LIBJAIL-VM: === $dir/$bin -test.v -test.count=1 -test.timeout=$timeout${run:+ -test.run=$run}"
	read -r t0 _ </proc/uptime
	(cd "/libjail/$dir" && exec "./$bin" -test.v -test.count=1 -test.timeout="$timeout" ${run:+"-test.run=$run"}) </dev/null 2>&1
	st=$?
	read -r t1 _ </proc/uptime
	echo "LIBJAIL-VM: === $dir/$bin exit $st ($t0 -> $t1 s uptime)"
	summary="$summary $dir=$st"
	[ $st -eq 0 ] || [ $rc -ne 0 ] || rc=$st
done </libjail/tests

if [ $rc -ne 0 ]; then
	echo "LIBJAIL-VM: --- last kernel messages"
	dmesg | tail -n 30
fi
echo "LIBJAIL-VM-SUMMARY:$summary"
echo "LIBJAIL-VM-RESULT: $rc"
if [ -n "$shell" ]; then
	echo "LIBJAIL-VM: shell for debugging; exit it to power off"
	setsid cttyhack sh -l
fi
sync
poweroff -f
echo o >/proc/sysrq-trigger
