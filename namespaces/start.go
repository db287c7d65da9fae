package namespaces

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/internal/nsenter"
)

// Where each kind of entry is carried out, and why:
//
//   - new namespaces: clone(2) flags (SysProcAttr.Cloneflags), except when a user namespace is joined:
//     then the child unshares them in the pre-runtime joiner after joining, so the user namespace it
//     joined owns them (a container can then mount sysfs or mqueue there). A new pid namespace is
//     always a clone flag, since a pid namespace only takes children and the child must be its init.
//   - a new time namespace: in the child, before the Go runtime starts (internal/nsenter): unshare,
//     write the offsets while nothing is in it yet, then setns into it, which the kernel allows only to
//     a single-threaded process. clone(2) cannot take CLONE_NEWTIME, and a namespace made by the
//     parent would be left on the parent's thread for good (it cannot leave it while multi-threaded).
//   - joined user, mount, time namespaces: in the child before the Go runtime starts, as the kernel
//     allows them only to a single-threaded process.
//   - joined pid, net, ipc, uts, cgroup namespaces: in the parent, on an OS thread locked around the
//     fork and restored afterwards. setns(CLONE_NEWPID) only moves the caller's future children, and
//     the parent's privileges in the initial user namespace let it join namespaces that a child cloned
//     into a new user namespace could no longer enter. The thread is restored rather than discarded
//     because a child's Pdeathsig fires when the thread that forked it exits.
//   - a new user namespace with a joined mount or time namespace: unshared by the child after the
//     joins, id maps written by Start over a socket handshake (lateUser).

// Configure prepares cmd for [NSPlan.Start]: clone flags and id mappings for new namespaces, and the
// fds and environment variable that make the child join namespaces before its Go runtime starts
// (appended to cmd.ExtraFiles and cmd.Env; existing entries keep their place). Call release after
// Start, whether it succeeded or not, to close the fds Configure opened.
//
// When a user namespace is created and uid and gid 0 are mapped in it, a nil
// SysProcAttr.Credential is set to uid 0, gid 0 there, so the child keeps its capabilities across
// execve.
func (p *NSPlan) Configure(cmd *exec.Cmd) (release func(), err error) {
	var opened []*os.File
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
		opened = nil
	}
	nfiles, sysAttr := len(cmd.ExtraFiles), cmd.SysProcAttr
	var savedAttr syscall.SysProcAttr
	if sysAttr != nil {
		savedAttr = *sysAttr
	}
	defer func() {
		if err != nil {
			// Leave cmd as it was given.
			closeAll()
			cmd.ExtraFiles = cmd.ExtraFiles[:nfiles]
			if cmd.SysProcAttr = sysAttr; sysAttr != nil {
				*sysAttr = savedAttr
			}
			userSyncs.Delete(cmd)
			forkPIDs.Delete(cmd)
		}
	}()
	pass := func(f *os.File) int {
		opened = append(opened, f)
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
		return 2 + len(cmd.ExtraFiles)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	attr := cmd.SysProcAttr
	var spec nsenter.Spec

	if p.Exec != nil {
		flags := 0
		for _, t := range p.Exec.Types {
			if t != PID {
				flags |= t.Flag()
			}
		}
		if flags != 0 {
			pidfd, err := unix.PidfdOpen(p.Exec.PID, 0)
			if err != nil {
				return nil, &StartError{Step: fmt.Sprintf("pidfd_open %d", p.Exec.PID), Err: err}
			}
			spec.PidFD = pass(os.NewFile(uintptr(pidfd), fmt.Sprintf("pidfd:%d", p.Exec.PID)))
			spec.PidFDFlags = flags
		}
	} else {
		joinedUser, late := p.Path(User) != "", p.lateUser()
		for _, ns := range p.Namespaces {
			switch {
			case ns.Path == "" && ns.Type == Time:
				spec.NewTime = &nsenter.TimeOffsets{
					MonotonicSecs:  p.TimeOffsets["monotonic"].Secs,
					MonotonicNanos: int64(p.TimeOffsets["monotonic"].Nanosecs),
					BoottimeSecs:   p.TimeOffsets["boottime"].Secs,
					BoottimeNanos:  int64(p.TimeOffsets["boottime"].Nanosecs),
				}
			case ns.Path == "" && ns.Type == Cgroup && p.DeferCgroup:
				// Made by the child with UnshareCgroup once it is in its cgroup.
			case ns.Path == "" && (joinedUser || late) && ns.Type != PID:
				spec.Unshare |= ns.Type.Flag()
			case ns.Path == "" && (joinedUser || late) && ns.Type == PID:
				// Cloned, the pid namespace would be owned by the initial user namespace and the
				// container's root could not mount its procfs: the child unshares it after the user
				// namespace and forks into it (see nsenter's forkpid; Start adopts the new init).
				spec.Unshare |= ns.Type.Flag()
				r, w, err := os.Pipe()
				if err != nil {
					return nil, &StartError{Step: "pipe for the pid namespace's init", Err: err}
				}
				opened = append(opened, r)
				spec.ForkPID = pass(w)
				forkPIDs.Store(cmd, r)
			case ns.Path == "":
				attr.Cloneflags |= uintptr(ns.Type.Flag())
			case ns.Type == User || ns.Type == Mount || ns.Type == Time:
				f, err := openNS(ns.Path, ns.Type)
				if err != nil {
					return nil, &StartError{Step: "open " + string(ns.Type) + " namespace", Err: err}
				}
				spec.Joins = append(spec.Joins, nsenter.Join{Flag: ns.Type.Flag(), FD: pass(f)})
			}
		}
		if late {
			sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return nil, &StartError{Step: "socketpair for id maps", Err: err}
			}
			unix.SetNonblock(sp[0], true) // the parent's end: reads with a deadline
			ours := os.NewFile(uintptr(sp[0]), "usersync-parent")
			opened = append(opened, ours)
			spec.UserSync = pass(os.NewFile(uintptr(sp[1]), "usersync-child"))
			userSyncs.Store(cmd, ours)
		} else if p.Creates(User) {
			attr.UidMappings = sysMappings(p.UIDMappings)
			attr.GidMappings = sysMappings(p.GIDMappings)
			// The parent is privileged in the parent user namespace: setgroups(2) may stay allowed.
			attr.GidMappingsEnableSetgroups = true
			if attr.Credential == nil && maps(p.UIDMappings, 0) && maps(p.GIDMappings, 0) {
				attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
			}
		}
	}
	if attr.Pdeathsig != 0 && len(p.parentJoins()) > 0 && p.parentJoins()[0].Type == PID {
		// Go's forked child checks getppid() against the parent's pid right after setting the
		// parent-death signal and kills itself when they differ, which they always do in a joined pid
		// namespace (the parent is outside: getppid() is 0). The joiner sets it instead.
		spec.Pdeathsig = int(attr.Pdeathsig)
		attr.Pdeathsig = 0
	}
	if !spec.Empty() {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		env := cmd.Env[:0:0]
		for _, kv := range cmd.Env {
			if !strings.HasPrefix(kv, nsenter.EnvName+"=") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, nsenter.EnvName+"="+spec.String())
	}
	return func() { userSyncs.Delete(cmd); forkPIDs.Delete(cmd); closeAll() }, nil
}

// forkPIDs holds, from Configure to Start, the read end of the pipe on which a child that forks into
// its new pid namespace reports the pid of the container's init.
var forkPIDs sync.Map // *exec.Cmd -> *os.File

// adoptForked reads the pid of the init the child forked into its pid namespace, reaps the child
// (which leaves once it has written it) and puts the init in cmd.Process: it is this process's child
// too (CLONE_PARENT), so cmd.Wait waits for it. End-of-file means the child failed before forking
// and carries on itself, to report why.
func adoptForked(cmd *exec.Cmd, r *os.File) error {
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [4]byte
	n, err := io.ReadFull(r, b[:])
	if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the init's pid: %w", err)
	}
	pid := int(int32(binary.NativeEndian.Uint32(b[:])))
	inter := cmd.Process
	st, err := inter.Wait()
	if err != nil {
		return fmt.Errorf("reap the forking child: %w", err)
	}
	if !st.Success() {
		return fmt.Errorf("the forking child: %s", st)
	}
	init, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	cmd.Process = init
	return nil
}

func sysMappings(in []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(in))
	for i, m := range in {
		out[i] = syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)}
	}
	return out
}

func maps(in []specs.LinuxIDMapping, id uint32) bool {
	for _, m := range in {
		if id >= m.ContainerID && uint64(id) < uint64(m.ContainerID)+uint64(m.Size) {
			return true
		}
	}
	return false
}

// userSyncs holds, from Configure to Start, the parent's end of the id-map handshake of a plan that
// creates its user namespace late (see lateUser).
var userSyncs sync.Map // *exec.Cmd -> *os.File

// lateUser reports whether the plan creates a user namespace and joins a mount or time namespace.
// Those must be joined before the user namespace exists (from inside it the child no longer may), so
// the child unshares the user namespace itself, after the joins, together with the other namespaces
// it creates (so the new user namespace owns them), and Start writes the id maps.
func (p *NSPlan) lateUser() bool {
	return p.Exec == nil && p.Creates(User) && (p.Path(Mount) != "" || p.Path(Time) != "")
}

// writeLateMaps is the parent's side of the handshake: wait for "u", write the maps, answer "g".
func (p *NSPlan) writeLateMaps(pid int, f *os.File) error {
	f.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := f.Read(b); err != nil {
		return fmt.Errorf("wait for the child's user namespace: %w", err)
	}
	for _, m := range []struct {
		file string
		maps []specs.LinuxIDMapping
	}{{"uid_map", p.UIDMappings}, {"gid_map", p.GIDMappings}} {
		path := fmt.Sprintf("/proc/%d/%s", pid, m.file)
		if err := os.WriteFile(path, []byte(formatMap(m.maps, "\n")+"\n"), 0); err != nil {
			return err
		}
	}
	_, err := f.Write([]byte{'g'})
	return err
}

// parentJoins lists the namespaces Start joins on the forking thread.
func (p *NSPlan) parentJoins() []Namespace {
	if p.Exec != nil {
		for _, t := range p.Exec.Types {
			if t == PID {
				return []Namespace{{Type: PID}}
			}
		}
		return nil
	}
	var out []Namespace
	for _, ns := range p.Namespaces {
		switch ns.Type {
		case PID, Network, IPC, UTS, Cgroup:
			if ns.Path != "" {
				out = append(out, ns)
			}
		}
	}
	return out
}

// Start starts cmd (prepared by [NSPlan.Configure]). When the plan joins a pid, net, ipc, uts or
// cgroup namespace, Start forks from an OS thread locked for the purpose, which joins them just before
// and returns to its own namespaces just after; if it cannot return, the thread is left locked so the
// Go runtime ends it. No other thread of the caller changes namespace. A *StartError before the fork
// means cmd.Start was never called: close the child's ends of pipes made with StdinPipe and the like
// as for any Cmd that is not started (better: make the pipes with os.Pipe). A *StartError after the
// fork (writing the id maps of a user namespace the child made, or a thread that could not return to
// its namespaces) kills the child: reap it with Wait.
func (p *NSPlan) Start(cmd *exec.Cmd) error {
	handshake, _ := userSyncs.LoadAndDelete(cmd)
	forked, _ := forkPIDs.LoadAndDelete(cmd)
	if err := p.start(cmd); err != nil {
		return err
	}
	if handshake != nil {
		if err := p.writeLateMaps(cmd.Process.Pid, handshake.(*os.File)); err != nil {
			cmd.Process.Kill()
			return &StartError{Step: "write id maps", Err: err}
		}
	}
	if forked != nil {
		if err := adoptForked(cmd, forked.(*os.File)); err != nil {
			cmd.Process.Kill()
			return &StartError{Step: "adopt the pid namespace's init", Err: err}
		}
	}
	return nil
}

func (p *NSPlan) start(cmd *exec.Cmd) error {
	joins := p.parentJoins()
	if len(joins) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := p.startOnThread(cmd, joins)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// startOnThread runs on a locked thread. restored reports whether the thread is back in its own
// namespaces.
func (p *NSPlan) startOnThread(cmd *exec.Cmd, joins []Namespace) (restored bool, err error) {
	// Handles on this thread's own namespaces, to come back to.
	var own []*os.File
	defer func() {
		for i := len(own) - 1; i >= 0; i-- {
			t := joins[i].Type
			if rerr := unix.Setns(int(own[i].Fd()), t.Flag()); rerr != nil {
				// The thread will be ended, which would fire a Pdeathsig of the child anyway: report
				// the failure and end the child too, rather than leave it half-watched.
				restored = false
				if err == nil {
					err = &StartError{Step: "return to own " + string(t) + " namespace", Err: rerr}
					if cmd.Process != nil {
						cmd.Process.Kill()
					}
				}
			}
			own[i].Close()
		}
	}()
	restored = true
	for _, ns := range joins {
		name := ns.Type.ProcName()
		if ns.Type == PID {
			name = "pid_for_children"
		}
		self, err := os.OpenFile("/proc/thread-self/ns/"+name, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return true, &StartError{Step: "open own " + string(ns.Type) + " namespace", Err: err}
		}
		own = append(own, self)
		var fd int
		if p.Exec != nil {
			fd, err = unix.PidfdOpen(p.Exec.PID, 0)
		} else {
			var f *os.File
			if f, err = openNS(ns.Path, ns.Type); err == nil {
				fd, err = unix.Dup(int(f.Fd())) // an fd of our own: f's finalizer may close f's
				f.Close()
			}
		}
		if err == nil {
			err = unix.Setns(fd, ns.Type.Flag())
			unix.Close(fd)
		}
		if err != nil {
			return true, &StartError{Step: "setns " + string(ns.Type), Err: err}
		}
	}
	return true, cmd.Start()
}
