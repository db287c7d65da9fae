// Package bench holds what `make bench` shares between the root package's Go benchmarks and the
// libjail-bench program (cmd/libjail-bench): the benchmark container's spec and bundle, and the
// statistics every figure is reported with.
//
// The container is the one runc and crun run in the comparison: a busybox rootfs, /bin/true (or
// another command), new pid, mount, ipc, uts and network namespaces, the seccomp package's default
// profile and a cgroup named libjail-bench-*. Everything it creates is named libjail-bench-*.
package bench
