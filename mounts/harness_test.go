package mounts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libjail/libjail/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The root tests re-exec this test binary in new mount and pid namespaces: the child applies a plan,
// enters the root and reports what it sees as JSON on stdout, and the parent asserts on it.
const (
	envChild = "LIBJAIL_MOUNTS_TEST_CHILD"
	envPlan  = "LIBJAIL_MOUNTS_TEST_PLAN"
	envProbe = "LIBJAIL_MOUNTS_TEST_PROBE"
	envHold  = "LIBJAIL_MOUNTS_TEST_HOLD"
	envFiles = "LIBJAIL_MOUNTS_TEST_FILES" // how many idmapped mounts arrive as fds 3...
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(childMain())
	}
	if os.Getenv(envHold) != "" {
		// Keep a namespace alive until the parent closes our stdin.
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}
	// Start the runtime's netpoller (epoll + eventfd) now: os/exec would open it mid-run, and
	// CheckFDLeaks then takes its own /proc/self/fd handle, at a new number, for a leak.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	os.Exit(testutil.CheckFDLeaks(m))
}

// probe says what the child looks at once inside the root.
type probe struct {
	Stat     []string `json:"stat,omitempty"`
	Read     []string `json:"read,omitempty"`
	Write    []string `json:"write,omitempty"`
	List     []string `json:"list,omitempty"`
	Readlink []string `json:"readlink,omitempty"`
	Race     *race    `json:"race,omitempty"`
	Exec     []string `json:"exec,omitempty"`   // a command run inside at the end; its output is reported
	V2Only   bool     `json:"v2Only,omitempty"` // first turn the child's cgroup mounts into a pure v2 layout
	Mkdir    []string `json:"mkdir,omitempty"`  // MkdirAllInRoot after EnterRoot (a working directory)
}

// race swaps Path between a directory and a symlink to Target while the mounts are made.
type race struct {
	Path   string `json:"path"`
	Target string `json:"target"`
	Rounds int    `json:"rounds"`
}

type statResult struct {
	Err  string `json:"err,omitempty"`
	Mode uint32 `json:"mode"`
	Rdev uint64 `json:"rdev"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
}

func (s statResult) isChr(major, minor uint32) bool {
	return s.Err == "" && s.Mode&unix.S_IFMT == unix.S_IFCHR && s.Rdev == unix.Mkdev(major, minor)
}

type mountLine struct {
	Root       string `json:"root"` // the path inside the filesystem that is mounted
	Mountpoint string `json:"mountpoint"`
	FSType     string `json:"fstype"`
	Source     string `json:"source"`
	Options    string `json:"options"` // per-mount options
	Super      string `json:"super"`   // superblock options
	Optional   string `json:"optional"`
}

type report struct {
	Step       string                `json:"step,omitempty"` // the step that failed
	Err        string                `json:"err,omitempty"`
	PreEnter   []mountLine           `json:"preEnter,omitempty"` // mountinfo after MountAll, before EnterRoot
	Mountinfo  []mountLine           `json:"mountinfo,omitempty"`
	Stat       map[string]statResult `json:"stat,omitempty"`
	Read       map[string]string     `json:"read,omitempty"`  // content or "error: ..."
	Write      map[string]string     `json:"write,omitempty"` // "ok" or "error: ..."
	List       map[string][]string   `json:"list,omitempty"`
	Readlink   map[string]string     `json:"readlink,omitempty"`
	RaceRounds int                   `json:"raceRounds,omitempty"` // swaps that happened
	Exec       string                `json:"exec,omitempty"`
	Took       map[string]string     `json:"took,omitempty"` // how long each step took
}

func (r report) mount(at string) (mountLine, bool) {
	var found mountLine
	ok := false
	for _, m := range r.Mountinfo {
		if m.Mountpoint == at {
			found, ok = m, true // the last one is on top
		}
	}
	return found, ok
}

func readMountinfo(path string) ([]mountLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountLine
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(fields) < sep+4 {
			return nil, fmt.Errorf("bad mountinfo line %q", s.Text())
		}
		out = append(out, mountLine{
			Root: unescape(fields[3]), Mountpoint: unescape(fields[4]), Options: fields[5], Optional: strings.Join(fields[6:sep], " "),
			FSType: fields[sep+1], Source: unescape(fields[sep+2]), Super: fields[sep+3],
		})
	}
	return out, s.Err()
}

func unescape(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func childMain() int {
	rep := childRun()
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

func childRun() (rep report) {
	var plan RootfsPlan
	var pr probe
	if err := json.Unmarshal([]byte(os.Getenv(envPlan)), &plan); err != nil {
		return report{Step: "decode", Err: err.Error()}
	}
	if err := json.Unmarshal([]byte(os.Getenv(envProbe)), &pr); err != nil {
		return report{Step: "decode", Err: err.Error()}
	}
	fail := func(step string, err error) report {
		rep.Step, rep.Err = step, err.Error()
		return rep
	}
	if pr.V2Only {
		// Only in the child's own mount namespace: the host keeps its layout.
		if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return fail("v2only", err)
		}
		if err := unix.Unmount("/sys/fs/cgroup", unix.MNT_DETACH); err != nil {
			return fail("v2only", err)
		}
		if err := unix.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, ""); err != nil {
			return fail("v2only", err)
		}
	}
	if n, _ := strconv.Atoi(os.Getenv(envFiles)); n > 0 {
		var files []*os.File
		for i := range n {
			files = append(files, os.NewFile(uintptr(3+i), "idmapped"))
		}
		err := plan.UseIDMapped(files)
		for _, f := range files {
			f.Close()
		}
		if err != nil {
			return fail("UseIDMapped", err)
		}
	}
	rep.Took = map[string]string{}
	start := time.Now()
	lap := func(step string) {
		rep.Took[step] = time.Since(start).String()
		start = time.Now()
	}
	if err := plan.PrepareRoot(); err != nil {
		return fail("PrepareRoot", err)
	}
	stop := make(chan struct{})
	done := make(chan int)
	if pr.Race != nil {
		var swaps atomic.Int64
		go swapper(filepath.Join(plan.Rootfs(), pr.Race.Path), pr.Race.Target, &swaps, stop, done)
		racePath := filepath.Join(plan.Rootfs(), pr.Race.Path)
		for i := 0; i < pr.Race.Rounds || swaps.Load() < int64(pr.Race.Rounds); i++ {
			// Errors are expected while the path changes under us; escapes are not.
			_ = plan.MountAll()
			// A mount on the raced path would pin it (a mount point cannot be renamed): take it
			// off again, without following a symlink that may be there now.
			for unix.Unmount(racePath, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW) == nil {
			}
		}
		close(stop)
		rep.RaceRounds = <-done
	} else if err := plan.MountAll(); err != nil {
		return fail("MountAll", err)
	}
	lap("PrepareRoot+MountAll")
	var err error
	if rep.PreEnter, err = readMountinfo("/proc/self/mountinfo"); err != nil {
		return fail("mountinfo", err)
	}
	if plan.PrivateDev() {
		// What the devices package does for the root package: a few default nodes, bound from
		// the host's inside a user namespace (where mknod is not allowed).
		for _, n := range []struct {
			name         string
			major, minor uint32
		}{{"null", 1, 3}, {"zero", 1, 5}} {
			p := filepath.Join(plan.Rootfs(), "dev", n.name)
			if plan.UserNamespace {
				if err := os.WriteFile(p, nil, 0o666); err != nil {
					return fail("node", err)
				}
				if err := unix.Mount("/dev/"+n.name, p, "", unix.MS_BIND, ""); err != nil {
					return fail("node", err)
				}
			} else if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(n.major, n.minor))); err != nil {
				return fail("mknod", err)
			}
		}
	}
	start = time.Now()
	if err := plan.EnterRoot(); err != nil {
		return fail("EnterRoot", err)
	}
	lap("EnterRoot")
	for _, d := range pr.Mkdir {
		f, err := plan.MkdirAllInRoot(d)
		if err != nil {
			return fail("MkdirAllInRoot", err)
		}
		f.Close()
	}
	if err := plan.FinishRoot(); err != nil {
		return fail("FinishRoot", err)
	}
	lap("FinishRoot")
	// Without a proc mount in the spec there is no /proc to read inside.
	if rep.Mountinfo, err = readMountinfo("/proc/self/mountinfo"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail("mountinfo", err)
	}
	rep.Stat = map[string]statResult{}
	for _, p := range pr.Stat {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			rep.Stat[p] = statResult{Err: err.Error()}
		} else {
			rep.Stat[p] = statResult{Mode: st.Mode, Rdev: st.Rdev, UID: st.Uid, GID: st.Gid}
		}
	}
	rep.Read = map[string]string{}
	for _, p := range pr.Read {
		b, err := readSome(p)
		if err != nil {
			rep.Read[p] = "error: " + err.Error()
		} else {
			rep.Read[p] = string(b)
		}
	}
	rep.Write = map[string]string{}
	for _, p := range pr.Write {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			rep.Write[p] = "error: " + err.Error()
		} else {
			rep.Write[p] = "ok"
		}
	}
	rep.List = map[string][]string{}
	for _, p := range pr.List {
		ents, err := os.ReadDir(p)
		names := []string{}
		if err != nil {
			names = append(names, "error: "+err.Error())
		}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		rep.List[p] = names
	}
	rep.Readlink = map[string]string{}
	for _, p := range pr.Readlink {
		l, err := os.Readlink(p)
		if err != nil {
			l = "error: " + err.Error()
		}
		rep.Readlink[p] = l
	}
	if len(pr.Exec) > 0 {
		out, err := exec.Command(pr.Exec[0], pr.Exec[1:]...).CombinedOutput()
		rep.Exec = string(out)
		if err != nil {
			rep.Exec += "error: " + err.Error()
		}
	}
	return rep
}

func readSome(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4096))
}

func swapper(path, target string, swaps *atomic.Int64, stop <-chan struct{}, done chan<- int) {
	n := 0
	tmp := path + ".swap"
	for {
		select {
		case <-stop:
			done <- n
			return
		default:
		}
		os.RemoveAll(tmp)
		if n%2 == 0 {
			_ = os.Symlink(target, tmp)
		} else {
			_ = os.Mkdir(tmp, 0o755)
		}
		// A path that became a mount point cannot be renamed (EBUSY): count what happened.
		if unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, path, unix.RENAME_EXCHANGE) == nil {
			n++
		}
		swaps.Add(1)
	}
}

// runChild applies plan in a child in new mount and pid namespaces and returns its report.
func runChild(t *testing.T, plan *RootfsPlan, pr probe) report {
	t.Helper()
	return runChildFlags(t, plan, pr, 0)
}

// runChildFlags is runChild with more namespaces (CLONE_NEW*) for the child.
func runChildFlags(t *testing.T, plan *RootfsPlan, pr probe, cloneflags uintptr) report {
	t.Helper()
	return runChildFiles(t, plan, pr, cloneflags, nil)
}

// runChildFiles is runChildFlags passing idmapped mounts made by OpenIDMapped.
func runChildFiles(t *testing.T, plan *RootfsPlan, pr probe, cloneflags uintptr, files []*os.File) report {
	t.Helper()
	return runChildAttr(t, plan, pr, &syscall.SysProcAttr{Cloneflags: cloneflags}, files, os.Args[0])
}

// runChildAttr runs exe (this test binary or a copy) as the child with attr (its Cloneflags get
// CLONE_NEWNS|CLONE_NEWPID added).
func runChildAttr(t *testing.T, plan *RootfsPlan, pr probe, attr *syscall.SysProcAttr, files []*os.File, exe string) report {
	t.Helper()
	pj, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	prj, err := json.Marshal(pr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=1", envPlan+"="+string(pj), envProbe+"="+string(prj), envFiles+"="+strconv.Itoa(len(files)))
	cmd.ExtraFiles = files
	attr.Cloneflags |= unix.CLONE_NEWNS | unix.CLONE_NEWPID
	attr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr = attr
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstderr: %s", err, stderr.String())
	}
	var rep report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("child output: %v\n%s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if rep.Err != "" && stderr.Len() > 0 {
		t.Logf("child stderr: %s", stderr.String())
	}
	return rep
}

// hostMounts returns this (the host's) mount table entries under any of the given paths.
func hostMounts(t *testing.T, under ...string) []mountLine {
	t.Helper()
	all, err := readMountinfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []mountLine
	ours := fmt.Sprintf("-%d-", os.Getpid()) // names from testutil.Name in this process
	for _, m := range all {
		for _, u := range under {
			if m.Mountpoint == u || strings.HasPrefix(m.Mountpoint, u+"/") ||
				(strings.Contains(m.Mountpoint, testutil.Prefix) && strings.Contains(m.Mountpoint, ours)) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// makeRootfs builds a tiny root: busybox and the usual directories.
func makeRootfs(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), testutil.Name(t, "rootfs"))
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("skipped: no /bin/busybox (apt-get install busybox-static): %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("libjail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func mustPlan(t *testing.T, spec *specs.Spec, opts Options) *RootfsPlan {
	t.Helper()
	p, err := Plan(spec, opts)
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	return p
}

func isErr(s string, errno unix.Errno) bool {
	return strings.HasPrefix(s, "error: ") && strings.HasSuffix(s, errno.Error())
}

// userns starts a process in a new user namespace with the given mappings and returns an fd of that
// namespace; the process ends with the test.
func userns(t *testing.T, uids, gids []specs.LinuxIDMapping) *os.File {
	t.Helper()
	conv := func(in []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		var out []syscall.SysProcIDMap
		for _, m := range in {
			out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		return out
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHold+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, UidMappings: conv(uids), GidMappings: conv(gids), Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	// The maps are written before the child execs; the ns file is ready once Start returns.
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return f
}
