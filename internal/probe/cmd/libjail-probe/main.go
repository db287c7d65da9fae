// libjail-probe runs inside a container and prints, as JSON, what it sees. It is built statically
// (CGO_ENABLED=0) so it needs nothing from the container's root.
//
//	libjail-probe [-open /dev/null,/dev/sda] [-write path=data,...]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/probe"
)

func main() {
	opens := flag.String("open", "", "comma-separated paths to try to open read-only")
	writes := flag.String("write", "", "comma-separated path=data pairs to try to write")
	reads := flag.String("read", "", "comma-separated paths to read: reports the byte count or the error")
	mkdirs := flag.String("mkdir", "", "comma-separated directories to create")
	syscalls := flag.String("syscall", "", "comma-separated raw syscall numbers to call with zero arguments")
	flag.Parse()

	r := probe.Report{
		PID: os.Getpid(), PPID: os.Getppid(), UID: os.Getuid(), GID: os.Getgid(), EUID: os.Geteuid(),
		Namespaces: map[string]uint64{}, Status: map[string]string{}, Rlimits: map[string][2]uint64{},
		FDs: map[string]string{}, Opens: map[string]string{}, Reads: map[string]string{},
	}
	fail := func(what string, err error) { r.Errors = append(r.Errors, what+": "+err.Error()) }

	r.Groups, _ = os.Getgroups()
	r.Umask = unix.Umask(0)
	unix.Umask(r.Umask)
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		r.Hostname = unix.ByteSliceToString(u.Nodename[:])
		r.Domainname = unix.ByteSliceToString(u.Domainname[:])
	}
	r.Cwd, _ = os.Getwd()
	r.Env = os.Environ()

	for _, ns := range []string{"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "user", "uts"} {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+ns, &st); err != nil {
			fail("ns "+ns, err)
			continue
		}
		r.Namespaces[ns] = st.Ino
	}
	r.Mountinfo = lines("/proc/self/mountinfo", fail)
	for _, l := range lines("/proc/self/status", fail) {
		k, v, ok := strings.Cut(l, ":")
		if ok && (strings.HasPrefix(k, "Cap") || k == "Seccomp" || k == "NoNewPrivs" || k == "Seccomp_filters") {
			r.Status[k] = strings.TrimSpace(v)
		}
	}
	for name, res := range map[string]int{
		"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_CORE": unix.RLIMIT_CORE,
		"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CPU": unix.RLIMIT_CPU,
		"RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	} {
		var l unix.Rlimit
		if err := unix.Getrlimit(res, &l); err == nil {
			r.Rlimits[name] = [2]uint64{l.Cur, l.Max}
		}
	}
	r.Cgroup = lines("/proc/self/cgroup", fail)
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		r.OOMScoreAdj = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/self/personality"); err == nil {
		r.Personality = strings.TrimSpace(string(b))
	}
	const ioprioWhoProcess = 1
	// The main thread's (the one that was exec'd): this goroutine may run on another thread.
	if v, _, e := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(os.Getpid()), 0); e == 0 {
		r.IOPrio = int(v)
	} else {
		fail("ioprio_get", e)
	}
	if a, err := unix.SchedGetAttr(os.Getpid(), 0); err == nil {
		r.Sched = [3]int{int(a.Policy), int(a.Nice), int(a.Priority)}
	} else {
		fail("sched_getattr", err)
	}
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(os.Getpid(), &cpus); err == nil {
		for c := 0; c < len(cpus)*64; c++ {
			if cpus.IsSet(c) {
				r.CPUs = append(r.CPUs, c)
			}
		}
	}
	if id, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false); err == nil {
		r.Keyring = int32(id)
	}
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
		r.Winsize = [2]int{int(ws.Row), int(ws.Col)}
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		r.Uptime = strings.TrimSpace(string(b))
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			t, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
			r.FDs[e.Name()] = t
		}
	}
	for _, p := range split(*opens) {
		f, err := os.Open(p)
		if err != nil {
			r.Opens[p] = errText(err)
			continue
		}
		f.Close()
		r.Opens[p] = "ok"
	}
	for _, p := range split(*reads) {
		b, err := os.ReadFile(p)
		if err != nil {
			r.Opens["read:"+p] = errText(err)
		} else {
			r.Opens["read:"+p] = fmt.Sprintf("%d bytes", len(b))
			r.Reads[p] = strings.TrimSpace(string(b))
		}
	}
	for _, p := range split(*mkdirs) {
		if err := os.Mkdir(p, 0o755); err != nil {
			r.Opens["mkdir:"+p] = errText(err)
		} else {
			r.Opens["mkdir:"+p] = "ok"
		}
	}
	for _, n := range split(*syscalls) {
		var nr uintptr
		fmt.Sscan(n, &nr)
		if _, _, e := unix.Syscall(nr, 0, 0, 0); e != 0 {
			r.Opens["syscall:"+n] = unix.ErrnoName(e)
		} else {
			r.Opens["syscall:"+n] = "ok"
		}
	}
	for _, pw := range split(*writes) {
		p, data, _ := strings.Cut(pw, "=")
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			r.Opens["write:"+p] = errText(err)
		} else {
			r.Opens["write:"+p] = "ok"
		}
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(&r); err != nil {
		fmt.Fprintln(os.Stderr, "libjail-probe:", err)
		os.Exit(1)
	}
}

// errText is the errno's name when there is one (EPERM, ENOENT), so tests compare stable strings.
func errText(err error) string {
	var errno unix.Errno
	if pe, ok := err.(*os.PathError); ok {
		if e, ok := pe.Err.(unix.Errno); ok {
			errno = e
		}
	}
	if errno != 0 {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func lines(path string, fail func(string, error)) []string {
	f, err := os.Open(path)
	if err != nil {
		fail(path, err)
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
