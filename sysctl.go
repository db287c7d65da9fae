package libjail

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/mounts"
	"github.com/libjail/libjail/namespaces"
)

// sysctl is one planned linux.sysctl entry: Path is relative to /proc/sys.
type sysctl struct {
	Key   string `json:"key"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

// errUnsafeProc means the /proc the child would write through is not the container's own procfs.
// It happens in the child: the parent's StepError carries its text, not its identity.
var errUnsafeProc = errors.New("not the container's own procfs")

// The ipc namespace's sysctls (ipc_sysctl.c; fs.mqueue.* from mq_sysctl.c).
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
	"kernel.shmmni", "kernel.shm_rmid_forced", "kernel.msg_next_id", "kernel.sem_next_id", "kernel.shm_next_id",
}

// planSysctls validates linux.sysctl: each key must belong to a namespace (ipc, net, uts) the
// container creates, or joins by path when that is not the agent's own or the VM's initial one
// (a pod's pinned namespaces: the sysctl then holds for the whole pod); anything else is global
// to the VM and refused. hostname and domainname are the spec's own fields when set there.
func planSysctls(sysctls map[string]string, ns *namespaces.NSPlan, mp *mounts.RootfsPlan, hostname, domainname string) ([]sysctl, error) {
	if len(sysctls) == 0 {
		return nil, nil
	}
	if !hasProcMount(mp) {
		return nil, specErr("linux.sysctl", "setting sysctls needs a proc mount at /proc")
	}
	keys := make([]string, 0, len(sysctls))
	for k := range sysctls {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a deterministic plan
	var out []sysctl
	for _, k := range keys {
		field := fmt.Sprintf("linux.sysctl[%q]", k)
		path, dotted, err := sysctlPath(k)
		if err != nil {
			return nil, specErr(field, "%v", err)
		}
		var need namespaces.Type
		switch {
		case slices.Contains(ipcSysctls, dotted) || strings.HasPrefix(dotted, "fs.mqueue."):
			need = namespaces.IPC
		case strings.HasPrefix(dotted, "net."):
			need = namespaces.Network
		case dotted == "kernel.hostname" || dotted == "kernel.domainname":
			if dotted == "kernel.hostname" && hostname != "" {
				return nil, specErr(field, "conflicts with the hostname field")
			}
			if dotted == "kernel.domainname" && domainname != "" {
				return nil, specErr(field, "conflicts with the domainname field")
			}
			need = namespaces.UTS
		default:
			return nil, specErr(field, "not namespaced: it would change the whole VM")
		}
		if err := ownNamespace(ns, need); err != nil {
			return nil, specErr(field, "%v", err)
		}
		out = append(out, sysctl{Key: k, Path: path, Value: sysctls[k]})
	}
	return out, nil
}

// ownNamespace checks that the container's namespace of type t is not the agent's nor the VM's.
func ownNamespace(ns *namespaces.NSPlan, t namespaces.Type) error {
	if ns.Creates(t) {
		return nil
	}
	path := ns.Path(t)
	if path == "" {
		return fmt.Errorf("needs a new %s namespace (the container shares the agent's)", t)
	}
	var joined unix.Stat_t
	if err := unix.Stat(path, &joined); err != nil {
		return fmt.Errorf("%s namespace %s: %w", t, path, err)
	}
	for _, pid := range []string{"self", "1"} {
		var st unix.Stat_t
		p := "/proc/" + pid + "/ns/" + t.ProcName()
		if err := unix.Stat(p, &st); err != nil {
			if pid == "1" && (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
				continue // an init the agent may not inspect (another user namespace owns it)
			}
			return fmt.Errorf("%s: %w", p, err)
		}
		if st.Dev == joined.Dev && st.Ino == joined.Ino {
			return fmt.Errorf("the %s namespace at %s is the agent's or the VM's own", t, path)
		}
	}
	return nil
}

// sysctlPath turns a key into its path under /proc/sys. The dotted form is the usual one; a key
// with a slash is already a path (needed when a component has a dot: net/ipv4/conf/eth0.100/...).
func sysctlPath(key string) (path, dotted string, err error) {
	if strings.Contains(key, "/") {
		path = key
	} else {
		path = strings.ReplaceAll(key, ".", "/")
	}
	for _, c := range strings.Split(path, "/") {
		if c == "" || c == "." || c == ".." {
			return "", "", fmt.Errorf("malformed key")
		}
	}
	if strings.ContainsAny(key, "\x00\n") {
		return "", "", fmt.Errorf("malformed key")
	}
	return path, strings.ReplaceAll(path, "/", "."), nil
}

func hasProcMount(mp *mounts.RootfsPlan) bool {
	if mp == nil {
		return false
	}
	for _, m := range mp.Mounts {
		if m.Destination == "/proc" {
			return true
		}
	}
	return false
}

// writeSysctls writes each planned sysctl through the container's procfs. It runs after the
// switch into the root and before FinishRoot, which may make /proc/sys read-only.
func writeSysctls(list []sysctl) error {
	if len(list) == 0 {
		return nil
	}
	proc, err := openProcfs()
	if err != nil {
		return fmt.Errorf("linux.sysctl: %w", err)
	}
	defer proc.Close()
	for _, s := range list {
		if err := writeSysctl(proc, s); err != nil {
			return fmt.Errorf("linux.sysctl[%q]: %w", s.Key, err)
		}
	}
	return nil
}

func writeSysctl(proc *os.File, s sysctl) error {
	// The uts entries of /proc/sys belong to the initial user namespace's root: through the
	// system calls, a user namespace's root may set its own uts namespace's names too.
	switch s.Path {
	case "kernel/hostname":
		return unix.Sethostname([]byte(s.Value))
	case "kernel/domainname":
		return unix.Setdomainname([]byte(s.Value))
	}
	f, err := openInProcfs(int(proc.Fd()), "sys/"+s.Path, unix.O_WRONLY|unix.O_TRUNC)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := f.WriteString(s.Value)
	if err == nil && n != len(s.Value) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(s.Value))
	}
	return err
}

// openProcfs opens the container's /proc (the child is inside the new root) and checks it is the
// procfs mounted for the container: a procfs superblock, its root directory, mounted at /proc in
// this mount namespace as a whole filesystem (not a bind of part of one), and showing this
// process's pid namespace. A rootfs with a symlink, a fake tree or another procfs bound at /proc
// (the CVE-2019-16884 and CVE-2025-52881 class) is refused rather than written to.
func openProcfs() (*os.File, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/proc", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("open /proc: %w", err)
	}
	proc := os.NewFile(uintptr(fd), "/proc")
	if err := verifyProcfs(fd); err != nil {
		proc.Close()
		return nil, err
	}
	return proc, nil
}

func verifyProcfs(fd int) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return fmt.Errorf("fstatfs /proc: %w", err)
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("%w: /proc is a filesystem of type %#x", errUnsafeProc, sfs.Type)
	}
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_MNT_ID, &stx); err != nil {
		return fmt.Errorf("statx /proc: %w", err)
	}
	const procRootIno = 1
	if stx.Ino != procRootIno {
		return fmt.Errorf("%w: /proc is not the root of a procfs (inode %d)", errUnsafeProc, stx.Ino)
	}
	buf := make([]byte, 32)
	n, err := unix.Readlinkat(fd, "self", buf)
	if err != nil {
		return fmt.Errorf("readlink /proc/self: %w", err)
	}
	if self, want := string(buf[:n]), strconv.Itoa(unix.Getpid()); self != want {
		return fmt.Errorf("%w: /proc belongs to another pid namespace (self is %s, not %s)", errUnsafeProc, self, want)
	}
	// The mount table through the handle itself: it is procfs of this pid namespace, and a task's
	// mountinfo shows its mount namespace, which holds the container's mounts only.
	return checkProcMount(fd, stx.Mnt_id)
}

// checkProcMount finds mount id in this mount namespace's table and checks it is a whole proc
// filesystem mounted at /proc.
func checkProcMount(proc int, id uint64) error {
	f, err := openInProcfs(proc, taskPath("mountinfo"), unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source superoptions
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[0] != strconv.FormatUint(id, 10) {
			continue
		}
		sep := slices.Index(fields, "-")
		if sep < 0 || sep+1 >= len(fields) {
			return fmt.Errorf("mountinfo: malformed line %q", sc.Text())
		}
		if fields[3] != "/" || fields[4] != "/proc" || fields[sep+1] != "proc" {
			return fmt.Errorf("%w: mount %d is %s of a %s filesystem at %s", errUnsafeProc, id, fields[3], fields[sep+1], fields[4])
		}
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("mountinfo: %w", err)
	}
	return fmt.Errorf("%w: mount %d of /proc is not in this mount namespace", errUnsafeProc, id)
}

// taskPath names a file of the calling thread below a verified procfs. thread-self would say the
// same, but it is a symlink, which openInProcfs does not follow.
func taskPath(name string) string {
	return strconv.Itoa(unix.Getpid()) + "/task/" + strconv.Itoa(unix.Gettid()) + "/" + name
}

// openInProcfs opens path below the procfs handle without leaving that filesystem: no symlinks,
// no magic links, no mount crossing, so nothing mounted over a procfs file can take the write.
func openInProcfs(proc int, path string, flags int) (*os.File, error) {
	fd, err := unix.Openat2(proc, path, &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: "/proc/" + path, Err: err}
	}
	f := os.NewFile(uintptr(fd), "/proc/"+path)
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		f.Close()
		return nil, fmt.Errorf("%w: /proc/%s is not on procfs", errUnsafeProc, path)
	}
	return f, nil
}

func (s sysctl) String() string { return "/proc/sys/" + s.Path + " = " + strconv.Quote(s.Value) }
