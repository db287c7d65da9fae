// Package vmtest is the pure cgroup-v2 VM test lane: run.sh boots a throwaway qemu guest whose
// initramfs holds busybox and the test binaries of the packages it is given, and reports their
// result back to the host through a marker line on the serial console. See README.md.
//
// The package's own tests are the lane's smoke test: inside the guest they check that the guest
// really is cgroup v2 only, with the controllers libjail needs enabled, and that v2 limits are
// enforced (memory.max kills, pids.max stops forks, cpu.max throttles). On any other machine they
// skip, because the guest sets LIBJAIL_VM=1 and nothing else does.
package vmtest

// EnvGuest is set to "1" in the environment of every test binary the lane runs inside the guest.
const EnvGuest = "LIBJAIL_VM"

// ResultMarker starts the console line that carries the guest's exit status to the host.
const ResultMarker = "LIBJAIL-VM-RESULT:"
