// The pre-runtime namespace joiner. See doc.go for the contract; this file only does what must
// happen before the Go runtime starts threads: setns into user, mount and time namespaces (which the
// kernel refuses to a multi-threaded caller) and unshare the namespaces that must be owned by a
// joined user namespace.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nsenter.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

#define MAX_JOINS 16

struct libjail_nsenter_result libjail_nsenter_result;

static void fail(int step, int ns, int err) {
	libjail_nsenter_result.failed = 1;
	libjail_nsenter_result.step = step;
	libjail_nsenter_result.nstype = ns;
	libjail_nsenter_result.err = err;
}

static int nstype_of(const char *name, size_t n) {
	static const struct { const char *name; int flag; } names[] = {
		{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},      {"time", CLONE_NEWTIME},
		{"net", CLONE_NEWNET},   {"ipc", CLONE_NEWIPC},     {"uts", CLONE_NEWUTS},
		{"pid", CLONE_NEWPID},   {"cgroup", CLONE_NEWCGROUP},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == n && memcmp(names[i].name, name, n) == 0)
			return names[i].flag;
	return 0;
}

// parse_num reads a decimal or 0x-prefixed number; returns -1 when malformed.
static long parse_num(const char *s, const char **end) {
	char *e;
	errno = 0;
	long v = strtol(s, &e, 0);
	if (errno != 0 || e == s || v < 0)
		return -1;
	*end = e;
	return v;
}

// become_root switches to uid/gid 0 of a joined user namespace when 0 is mapped there. An unmapped 0
// (EINVAL) is left for the caller to handle with its own user switch; setgroups may be denied.
static int become_root(void) {
	if (setresgid(0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	if (setgroups(0, NULL) < 0 && errno != EPERM)
		return -1;
	if (setresuid(0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	return 0;
}

// new_timens creates a time namespace, sets its offsets while no process is in it, and enters it.
// setns(2) allows this only to a single-threaded caller, which is why it happens here.
static int new_timens(const long long off[4]) {
	if (unshare(CLONE_NEWTIME) < 0)
		return -1;
	if (off[0] || off[1] || off[2] || off[3]) {
		char buf[128];
		// Clock ids: CLOCK_MONOTONIC 1, CLOCK_BOOTTIME 7 (every kernel with time namespaces takes ids).
		int n = snprintf(buf, sizeof(buf), "1 %lld %lld\n7 %lld %lld\n", off[0], off[1], off[2], off[3]);
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			return -1;
		if (write(fd, buf, (size_t)n) != n) {
			int err = errno;
			close(fd);
			errno = err;
			return -1;
		}
		close(fd);
	}
	int fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ret = setns(fd, CLONE_NEWTIME);
	int err = errno;
	close(fd);
	errno = err;
	return ret;
}

// jail shuts a pod's pid-namespace holder away from the host. It is pid 1 of the pod's pid
// namespace, so every container of the pod sees it: through /proc/1/root, /proc/1/ns/mnt and
// /proc/1/ns/cgroup it would otherwise hand them the host's filesystem and cgroup namespace. It
// moves into a mount namespace holding nothing but an empty read-only tmpfs and a cgroup namespace
// of its own, then gives up every capability and becomes undumpable (no ptrace, no /proc access
// without CAP_SYS_PTRACE over the host).
static int jail(void) {
	if (unshare(CLONE_NEWNS | CLONE_NEWCGROUP) < 0)
		return -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	// /proc always exists; in this private namespace covering it hides nothing from anyone else.
	if (mount("libjail-holder", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0500") < 0)
		return -1;
	if (chdir("/proc") < 0)
		return -1;
	// pivot_root with old and new root the same, then detach the old: only the tmpfs is left. A
	// root on rootfs (an initramfs) cannot be pivoted: then only chroot, and the host's mounts stay
	// in this namespace, unreachable to the holder but not to a setns into it; refuse that.
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return -1;
	if (umount2(".", MNT_DETACH) < 0)
		return -1;
	if (chdir("/") < 0)
		return -1;
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		return -1;
	for (int c = 0; c <= 63; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
			return -1;
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return -1;
	return 0;
}

// hold keeps a pinning helper alive: it reports readiness with one byte on fd 1 and exits when fd 0
// reaches EOF. It never returns into the embedding program.
static void hold(int jailing) {
	char c = 'r';
	if (!libjail_nsenter_result.failed && jailing && jail() < 0)
		fail(LIBJAIL_STEP_JAIL, CLONE_NEWNS, errno);
	if (!libjail_nsenter_result.failed) {
		// As the init of a pinned pid namespace it inherits the orphans of that namespace: let the
		// kernel reap them.
		signal(SIGCHLD, SIG_IGN);
		if (write(1, &c, 1) != 1)
			_exit(2);
		while (read(0, &c, 1) > 0)
			;
		_exit(0);
	}
	_exit(100 + libjail_nsenter_result.step);
}

__attribute__((constructor)) static void libjail_nsenter(void) {
	const char *spec = getenv(LIBJAIL_NSENTER_ENV);
	if (spec == NULL)
		return;

	// A credential change (become_root) clears the parent-death signal the parent asked for: keep it.
	int inherited_pdeathsig = 0;
	prctl(PR_GET_PDEATHSIG, &inherited_pdeathsig);

	struct { int fd; int ns; int pidfd; } joins[MAX_JOINS];
	int njoins = 0, unshare_flags = 0, holding = 0, jailing = 0, timens = 0, pdeathsig = 0, usersync = -1;
	int forkpid = -1;
	long long time_off[4] = {0, 0, 0, 0};

	// Grammar: comma-separated items; "<ns>=<fd>", "pidfd=<fd>:<flags>", "unshare=<flags>", "hold".
	const char *p = spec;
	while (*p != '\0') {
		const char *eq = strchr(p, '=');
		const char *comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		if (comma - p == 4 && memcmp(p, "hold", 4) == 0) {
			holding = 1;
		} else if (comma - p == 4 && memcmp(p, "jail", 4) == 0) {
			jailing = 1;
		} else if (eq != NULL && eq < comma && eq - p == 6 && memcmp(p, "timens", 6) == 0) {
			// timens=<monotonic s>:<ns>:<boottime s>:<ns>
			const char *q = eq + 1;
			for (int k = 0; k < 4; k++) {
				char *e;
				errno = 0;
				time_off[k] = strtoll(q, &e, 10);
				if (errno != 0 || e == q || *e != (k < 3 ? ':' : *comma)) {
					fail(LIBJAIL_STEP_PARSE, CLONE_NEWTIME, EINVAL);
					goto out;
				}
				q = e + 1;
			}
			timens = 1;
		} else if (eq == NULL || eq > comma) {
			fail(LIBJAIL_STEP_PARSE, 0, EINVAL);
			goto out;
		} else {
			const char *end;
			long v = parse_num(eq + 1, &end);
			if (v < 0) {
				fail(LIBJAIL_STEP_PARSE, 0, EINVAL);
				goto out;
			}
			if (eq - p == 7 && memcmp(p, "unshare", 7) == 0) {
				unshare_flags = (int)v;
			} else if (eq - p == 9 && memcmp(p, "pdeathsig", 9) == 0) {
				pdeathsig = (int)v;
			} else if (eq - p == 8 && memcmp(p, "usersync", 8) == 0) {
				usersync = (int)v;
			} else if (eq - p == 7 && memcmp(p, "forkpid", 7) == 0) {
				forkpid = (int)v;
			} else if (eq - p == 5 && memcmp(p, "pidfd", 5) == 0) {
				long flags;
				if (*end != ':' || (flags = parse_num(end + 1, &end)) < 0 || njoins == MAX_JOINS) {
					fail(LIBJAIL_STEP_PARSE, 0, EINVAL);
					goto out;
				}
				joins[njoins].fd = (int)v;
				joins[njoins].ns = (int)flags;
				joins[njoins++].pidfd = 1;
			} else {
				int ns = nstype_of(p, (size_t)(eq - p));
				if (ns == 0 || njoins == MAX_JOINS) {
					fail(LIBJAIL_STEP_PARSE, 0, EINVAL);
					goto out;
				}
				joins[njoins].fd = (int)v;
				joins[njoins].ns = ns;
				joins[njoins++].pidfd = 0;
			}
			if (end != comma) {
				fail(LIBJAIL_STEP_PARSE, 0, EINVAL);
				goto out;
			}
		}
		p = *comma ? comma + 1 : comma;
	}

	// First, while /proc is surely the one the parent sees: a new time namespace (owned by the user
	// namespace the process is in now; only the offsets need privilege over it).
	if (timens && new_timens(time_off) < 0) {
		fail(LIBJAIL_STEP_TIMENS, CLONE_NEWTIME, errno);
		goto out;
	}

	// A pidfd joins all its namespaces at once; the kernel orders the user namespace first itself.
	for (int i = 0; i < njoins; i++) {
		if (!joins[i].pidfd)
			continue;
		if (setns(joins[i].fd, joins[i].ns) < 0) {
			fail(LIBJAIL_STEP_SETNS, joins[i].ns, errno);
			goto out;
		}
		if ((joins[i].ns & CLONE_NEWUSER) && become_root() < 0) {
			fail(LIBJAIL_STEP_BECOME_ROOT, CLONE_NEWUSER, errno);
			goto out;
		}
	}

	// Namespace files: everything but the user namespace is tried first while the process still has
	// the initial namespace's privileges (needed when the target is owned by an ancestor of the user
	// namespace being joined); one refused with EPERM is retried after joining the user namespace
	// (needed when the caller is only privileged there).
	int deferred[MAX_JOINS], ndeferred = 0, userfd = -1;
	for (int i = 0; i < njoins; i++)
		if (!joins[i].pidfd && joins[i].ns == CLONE_NEWUSER)
			userfd = joins[i].fd;
	for (int i = 0; i < njoins; i++) {
		if (joins[i].pidfd || joins[i].ns == CLONE_NEWUSER)
			continue;
		if (setns(joins[i].fd, joins[i].ns) < 0) {
			if (errno != EPERM || userfd == -1) {
				fail(LIBJAIL_STEP_SETNS, joins[i].ns, errno);
				goto out;
			}
			deferred[ndeferred++] = i;
		}
	}
	if (userfd != -1) {
		if (setns(userfd, CLONE_NEWUSER) < 0) {
			fail(LIBJAIL_STEP_SETNS, CLONE_NEWUSER, errno);
			goto out;
		}
		if (become_root() < 0) {
			fail(LIBJAIL_STEP_BECOME_ROOT, CLONE_NEWUSER, errno);
			goto out;
		}
	}
	for (int i = 0; i < ndeferred; i++) {
		if (setns(joins[deferred[i]].fd, joins[deferred[i]].ns) < 0) {
			fail(LIBJAIL_STEP_SETNS, joins[deferred[i]].ns, errno);
			goto out;
		}
	}
	if (unshare_flags != 0 && unshare(unshare_flags) < 0) {
		fail(LIBJAIL_STEP_UNSHARE, unshare_flags, errno);
		goto out;
	}
	if (usersync >= 0) {
		// A user namespace made here, after the joins it would have forbidden: the parent writes its
		// id maps between our "u" and its "g".
		char c = 'u';
		ssize_t n;
		if (write(usersync, &c, 1) != 1) {
			fail(LIBJAIL_STEP_USERMAP, CLONE_NEWUSER, errno);
			goto out;
		}
		do
			n = read(usersync, &c, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1 || c != 'g') {
			fail(LIBJAIL_STEP_USERMAP, CLONE_NEWUSER, n < 0 ? errno : EPIPE);
			goto out;
		}
		if (become_root() < 0) {
			fail(LIBJAIL_STEP_BECOME_ROOT, CLONE_NEWUSER, errno);
			goto out;
		}
	}

	if (forkpid >= 0) {
		// A pid namespace unshared here (so owned by the joined or new user namespace, whose root
		// may then mount its procfs) holds only this process's children: fork into it. As a
		// sibling (CLONE_PARENT), so the parent can wait for it; this process reports its pid and
		// leaves, and the child goes on to become the container's init.
		pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
		if (pid < 0) {
			fail(LIBJAIL_STEP_FORKPID, CLONE_NEWPID, errno);
			goto out;
		}
		if (pid > 0) {
			int32_t v = pid;
			_exit(write(forkpid, &v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
		}
		close(forkpid);
		forkpid = -1;
	}

	// Last, as a change of credentials clears it.
	if (pdeathsig == 0)
		pdeathsig = inherited_pdeathsig;
	if (pdeathsig != 0 && prctl(PR_SET_PDEATHSIG, pdeathsig) < 0) {
		fail(LIBJAIL_STEP_PDEATHSIG, 0, errno);
		goto out;
	}

out:
	// The fds were the parent's to pass and are ours to close, success or not, so none reaches the
	// container.
	for (int i = 0; i < njoins; i++)
		close(joins[i].fd);
	if (usersync >= 0)
		close(usersync);
	if (forkpid >= 0)
		close(forkpid); // no fork: the parent reads end-of-file and keeps this process

	// Keep the variable from leaking into the embedding program's children. glibc edits the
	// environment array in place, which is the one the Go runtime reads later.
	unsetenv(LIBJAIL_NSENTER_ENV);
	if (holding)
		hold(jailing);
}
