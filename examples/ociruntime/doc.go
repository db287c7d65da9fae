// ociruntime is a command line with the OCI runtime command-line interface of runc, so that
// container engines (through their runtime option) and the OCI runtime validation suite can drive
// libjail as they drive runc.
//
//	ociruntime [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [OPTIONS] ID [ARGS]
//
// Commands: create, start, state, kill, delete, run, exec, ps, pause, resume, update, features,
// list.
// Container state lives in --root (default /run/libjail), one directory per container, so every
// command may run in a different process. Errors go to stderr and to the log, and the exit status
// is 1; run and exec in the foreground exit with their process's status (128+n when killed by
// signal n).
//
// A container whose linux.cgroupsPath has a parent other than the root (for example /pod1/ctr1)
// belongs to the pod of that parent cgroup: the pod cgroup is created with the first such
// container, holds the pod-level device rules, and is removed with the last one.
package main
