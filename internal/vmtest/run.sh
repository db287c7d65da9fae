#!/usr/bin/env bash
# The pure cgroup-v2 VM test lane (make test-vm). See internal/vmtest/README.md.
#
#   bash internal/vmtest/run.sh [-run REGEX] [PKG...]    (as root, from anywhere in the repo)
#
# Builds the test binaries of PKG... (default: ./internal/vmtest ./cgroups ./devices .), packs them
# with busybox into an initramfs, boots Debian's cloud kernel in qemu with cgroup_no_v1=all, runs
# each binary with -test.v inside the guest and exits with the guest's result. Knobs (environment):
#   VM_ACCEL=auto|tcg|kvm  VM_TIMEOUT=1200 (s)  VM_MEM=2048 (MiB)  VM_SMP=2  VM_TEST_TIMEOUT=10m
#   VM_DIR=_build/vm (cache)  VM_APPEND="extra kernel args"
#   VM_MODULES="loop overlay veth virtio_blk virtio_pci" (kernel modules loaded in the guest)
#   VM_SHELL=1: a shell on the console after the tests, for debugging (Ctrl-A x quits qemu)
set -euo pipefail

usage() { sed -n '2,12s/^# \{0,1\}//p' "$0"; }

run_filter=""
pkgs=()
while [ $# -gt 0 ]; do
	case $1 in
	-run) run_filter=${2:?-run needs a regex}; shift 2 ;;
	-run=*) run_filter=${1#-run=}; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; pkgs+=("$@"); break ;;
	-*) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
	*) pkgs+=("$1"); shift ;;
	esac
done
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./internal/vmtest ./cgroups ./devices .)
case $run_filter in *[[:space:]]*)
	echo "run.sh: -run regex must not contain spaces (it travels on the kernel command line)" >&2; exit 2 ;;
esac

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
VM=${VM_DIR:-$REPO/_build/vm}
GO=${GO:-go}
ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); } # milliseconds as seconds, 1 decimal
t_start=$(ms)
say() { printf '[test-vm %6ss] %s\n' "$(secs $(($(ms) - t_start)))" "$*"; }
die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (it installs packages with apt-get and makes device nodes)"

# --- 1. host packages, installed only when missing --------------------------------------------
apt_updated=""
apt_update() { [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }; }
missing=()
for p in qemu-system-x86 busybox-static cpio e2fsprogs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	apt_update
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. the guest kernel: downloaded and unpacked under $VM, never installed on the host ----------
kdir=$VM/kernel
if [ ! -s "$kdir/vmlinuz" ] || [ ! -d "$kdir/modules" ]; then
	meta=linux-image-cloud-amd64
	# The meta package is empty; the image lives in the versioned package it depends on.
	real_pkg() { apt-cache depends "$meta" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'; }
	pkg=$(real_pkg)
	[ -n "$pkg" ] || { apt_update; pkg=$(real_pkg); }
	[ -n "$pkg" ] || die "cannot resolve the package behind $meta (apt-cache depends $meta)"
	mkdir -p "$VM/debs"
	if ! compgen -G "$VM/debs/${pkg}_*.deb" >/dev/null; then
		say "downloading kernel package $pkg"
		(cd "$VM/debs" && apt-get -qq -o APT::Sandbox::User=root download "$pkg")
	fi
	deb=$(ls -t "$VM/debs/${pkg}_"*.deb | head -n1)
	rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp/root"
	dpkg-deb -x "$deb" "$kdir.tmp/root"
	cp "$kdir.tmp"/root/boot/vmlinuz-* "$kdir.tmp/vmlinuz"
	cp "$kdir.tmp"/root/boot/config-* "$kdir.tmp/config" 2>/dev/null || true
	mv "$kdir.tmp"/root/lib/modules/* "$kdir.tmp/modules"
	echo "$pkg $(dpkg-deb -f "$deb" Version)" >"$kdir.tmp/package"
	rm -rf "$kdir.tmp/root" "$kdir" && mv "$kdir.tmp" "$kdir"
fi
say "kernel: $(cat "$kdir/package")"

# --- 3. test binaries and the initramfs tree ----------------------------------------------------
stage=$VM/stage
rm -rf "$stage"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,root,etc,newroot,var/tmp,libjail/bin}
cp /bin/busybox "$stage/bin/busybox"
mknod -m 600 "$stage/dev/console" c 5 1 # the kernel opens it for init's stdio before any devtmpfs
mknod -m 666 "$stage/dev/null" c 1 3
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$stage/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
echo libjail-vm >"$stage/etc/hostname"
cp "$REPO/internal/vmtest/init.sh" "$stage/init"

# Kernel modules the tests need that this kernel builds as modules (loop devices, overlayfs, veth,
# the virtio disk that stands for the VM's own root disk), with their dependencies first.
mkdir -p "$stage/lib/modules"
: >"$stage/libjail/modules"
add_module() {
	local m=${1//-/_} f d
	grep -qx "$m" "$stage/libjail/modules" && return 0
	f=$(find "$kdir/modules" -name "$m.ko" -print -quit)
	[ -n "$f" ] || f=$(find "$kdir/modules" -name "${1//_/-}.ko" -print -quit)
	[ -n "$f" ] || { say "kernel module $1 not found: built in or absent"; return 0; }
	# .modinfo holds NUL-separated key=value strings; depends= lists what must be loaded first.
	for d in $(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n1 | tr , ' '); do add_module "$d"; done
	cp "$f" "$stage/lib/modules/$m.ko"
	echo "$m" >>"$stage/libjail/modules"
}
for m in ${VM_MODULES-loop overlay veth virtio_blk virtio_pci}; do add_module "$m"; done
chmod 755 "$stage/init"

# copy_libs puts the shared libraries and loader of a dynamically linked binary at their host paths.
copy_libs() {
	ldd "$1" >/dev/null 2>&1 || return 0 # static
	ldd "$1" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | while read -r lib; do
		[ -e "$stage$lib" ] || { mkdir -p "$stage$(dirname "$lib")" && cp -L "$lib" "$stage$lib"; }
	done
}

export CGO_ENABLED=${CGO_ENABLED:-$($GO env CGO_ENABLED)}
# Tests build the probe with `go build` on the host; the guest has no go, so ship it prebuilt.
if [ -d internal/escape/cmd/libjail-escape ]; then
	# The escape battery's attacker, for the root package's escape tests in the guest.
	CGO_ENABLED=0 $GO build -trimpath -o "$stage/libjail/bin/libjail-escape" ./internal/escape/cmd/libjail-escape
fi
if [ -d internal/probe/cmd/libjail-probe ]; then
	CGO_ENABLED=0 $GO build -trimpath -o "$stage/libjail/bin/libjail-probe" ./internal/probe/cmd/libjail-probe
fi
: >"$stage/libjail/tests"
built=() skipped=()
for pkg in "${pkgs[@]}"; do
	dir=${pkg#./}
	dir=${dir%/}
	[ "$dir" = . ] && dir=""
	name=$(basename "${dir:-libjail}")
	if [ ! -d "$REPO/$dir" ]; then
		say "skip $pkg: no such directory"; skipped+=("$pkg(missing)"); continue
	fi
	if ! compgen -G "$REPO/${dir:+$dir/}*_test.go" >/dev/null; then
		say "skip $pkg: no test files"; skipped+=("$pkg(no tests)"); continue
	fi
	out=$stage/libjail/pkg/${dir:+$dir/}$name.test
	mkdir -p "$(dirname "$out")"
	if ! log=$($GO test -c -o "$out" "./$dir" 2>&1); then
		say "skip $pkg: does not build:"; echo "$log" | tail -n 20 | sed 's/^/    /'
		skipped+=("$pkg(build failed)"); continue
	fi
	[ -f "$out" ] || { say "skip $pkg: no test binary"; skipped+=("$pkg(no binary)"); continue; }
	copy_libs "$out"
	[ ! -d "$REPO/${dir:+$dir/}testdata" ] || cp -a "$REPO/${dir:+$dir/}testdata" "$(dirname "$out")/"
	echo "pkg/${dir:-.} $name.test" >>"$stage/libjail/tests"
	built+=("$pkg")
done
[ ${#built[@]} -gt 0 ] || die "no test binary built (skipped: ${skipped[*]})"
say "built: ${built[*]}${skipped:+; skipped: ${skipped[*]}}"

# --- 4. the initramfs, rebuilt only when its tree changed ---------------------------------------
initrd=$VM/initramfs.cpio.gz
sum=$(cd "$stage" && { find . -printf '%p %y %m %s\n' | LC_ALL=C sort; find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1)
if [ -s "$initrd" ] && [ "$(cat "$initrd.sum" 2>/dev/null)" = "$sum" ]; then
	say "initramfs unchanged ($(du -h "$initrd" | cut -f1))"
else
	(cd "$stage" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd" && echo "$sum" >"$initrd.sum"
	say "initramfs built ($(du -h "$initrd" | cut -f1))"
fi

# --- 5. boot --------------------------------------------------------------------------------------
# This machine's /dev/kvm is a paravirtual KVM (kvm_pvm) that cannot run a stock kernel, so use KVM only
# when a hardware KVM module is loaded, the CPU shows vmx/svm and /dev/kvm opens; TCG otherwise.
accel=${VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
	accel=tcg
	if { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; } &&
		grep -qwE 'vmx|svm' /proc/cpuinfo && { : <>/dev/kvm; } 2>/dev/null; then
		accel=kvm
	fi
fi
case $accel in
tcg) cpu=max ;;
kvm) cpu=host ;;
*) die "VM_ACCEL must be auto, tcg or kvm" ;;
esac
append="console=ttyS0 cgroup_no_v1=all quiet panic=-1 libjail.testtimeout=${VM_TEST_TIMEOUT:-10m}"
[ -z "$run_filter" ] || append+=" libjail.run=$run_filter"
[ -z "${VM_APPEND:-}" ] || append+=" $VM_APPEND"
[ -z "${VM_SHELL:-}" ] || append+=" libjail.shell=1"
# A fresh ext4 scratch disk: the guest mounts it on /tmp, so tests' temporary directories live on ext4
# on /dev/vda (254:0) as they do on the host, where that is the root disk tests keep from containers.
disk=$VM/disk.img
rm -f "$disk" && truncate -s 512M "$disk"
mkfs.ext4 -q -F -E nodiscard "$disk"
log=$VM/console.log
say "booting (accel=$accel, ${VM_MEM:-2048} MiB, ${VM_SMP:-2} cpus, timeout ${VM_TIMEOUT:-1200}s); console log: $log"
t_boot=$(ms)
set +e
qemu=(qemu-system-x86_64 -M q35 -accel "$accel" -cpu "$cpu" -m "${VM_MEM:-2048}" -smp "${VM_SMP:-2}"
	-nographic -no-reboot -nic none -drive "file=$disk,if=virtio,format=raw,cache=unsafe"
	-kernel "$kdir/vmlinuz" -initrd "$initrd" -append "$append")
if [ -n "${VM_SHELL:-}" ]; then
	# Interactive: qemu keeps the terminal (raw mode) and the output is not filtered.
	"${qemu[@]}" | tee "$log"
	qemu_status=${PIPESTATUS[0]}
else
	timeout -k 10 "${VM_TIMEOUT:-1200}" "${qemu[@]}" </dev/null 2>&1 |
		sed -u 's/\r//g; s/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' | tee "$log"
	qemu_status=${PIPESTATUS[0]}
fi
set -e
t_end=$(ms)

result=$(tr -d '\r' <"$log" | sed -n 's/^LIBJAIL-VM-RESULT: \([0-9][0-9]*\)$/\1/p' | tail -n1)
booted=$(tr -d '\r' <"$log" | sed -n 's/.*LIBJAIL-VM-BOOTED: uptime \([0-9.]*\)s$/\1/p' | tail -n1)
echo "[test-vm] qemu ran $(secs $((t_end - t_boot)))s (init started at ${booted:-?}s of guest uptime), total $(secs $((t_end - t_start)))s"
if [ -z "$result" ]; then
	[ "$qemu_status" != 124 ] || echo "[test-vm] FAIL: timed out after ${VM_TIMEOUT:-1200}s"
	echo "[test-vm] FAIL: no LIBJAIL-VM-RESULT marker (qemu exit $qemu_status); console tail:"
	tail -n 40 "$log" | sed 's/^/    /'
	echo "test-vm: 0 passed, 1 failed"
	exit 1
fi
[ ${#skipped[@]} -eq 0 ] || echo "[test-vm] skipped packages: ${skipped[*]}"
if [ "$result" = 0 ]; then echo "[test-vm] PASS"; else echo "[test-vm] FAIL: guest result $result"; fi
# Top-level tests of every binary, as a closing line CI tooling reads.
count() { tr -d '\r' <"$log" | grep -c "^--- $1: " || true; }
echo "test-vm: $(count PASS) passed, $(count FAIL) failed, $(count SKIP) skipped"
exit "$result"
