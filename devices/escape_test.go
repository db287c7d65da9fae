package devices

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

func init() {
	// The launcher is moved into the container cgroup, then starts the attacker in new mount and
	// cgroup namespaces rooted there: the attacker sees its own cgroup as the root of a cgroup
	// filesystem it mounts itself, as a container with a writable cgroup mount does.
	children["escape-launcher"] = func() (any, error) {
		if err := waitGate(); err != nil {
			return nil, err
		}
		cmd := childCmd("escape")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWCGROUP}
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("attacker: %w", err)
		}
		return json.RawMessage(out), nil
	}
	children["escape"] = func() (any, error) { return attack(os.Getenv("V2") == "1", os.Getenv("DISK")) }
}

// attack is a process with every capability trying to reach the disk.
func attack(v2 bool, nodes string) (map[string]string, error) {
	res := map[string]string{}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, err
	}
	mnt, err := os.MkdirTemp("", "libjail-test-escape-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(mnt)
	if v2 {
		err = unix.Mount("cgroup2", mnt, "cgroup2", 0, "")
	} else {
		err = unix.Mount("cgroup", mnt, "cgroup", 0, "devices")
	}
	if err != nil {
		return nil, fmt.Errorf("mount cgroup: %w", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)

	// Reach the pod's cgroup, which its mount does not show, by file handle (CAP_DAC_READ_SEARCH).
	if h := os.Getenv("POD_HANDLE"); h != "" {
		res["pod_by_handle"] = podByHandle(mnt, h, v2)
	}
	if v2 {
		attackV2(mnt, res)
	} else {
		for name, line := range map[string]string{"allow_all": "a *:* rwm", "allow_disk": "b 254:0 rwm", "allow_blk": "b 7:0 rwm"} {
			res["write_"+name] = errName(os.WriteFile(filepath.Join(mnt, "devices.allow"), []byte(line), 0))
		}
	}

	// Make its own nodes for the disks (mknod of block devices is in the default rules).
	dir, err := os.MkdirTemp("", "libjail-test-escape-nodes-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for name, mm := range map[string][2]uint32{"disk": {diskMajor, diskMinor}, "blk": {blkMajor, blkMinor}} {
		p := filepath.Join(dir, name)
		res["mknod_"+name] = errName(unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(mm[0], mm[1]))))
		res["open_own_"+name] = tryOpen(p, unix.O_RDONLY)
	}
	res["open_disk"] = tryOpen(filepath.Join(nodes, "vda"), unix.O_RDONLY)
	res["open_blk"] = tryOpen(filepath.Join(nodes, "loop0"), unix.O_RDONLY)
	return res, nil
}

// podByHandle opens the pod cgroup by its file handle and widens it: on v1 by writing to its
// devices.allow, on v2 by detaching its program by id.
func podByHandle(mnt, hex string, v2 bool) string {
	var typ int32
	var b []byte
	if _, err := fmt.Sscanf(hex, "%d:%x", &typ, &b); err != nil {
		return err.Error()
	}
	m, err := os.Open(mnt)
	if err != nil {
		return errName(err)
	}
	defer m.Close()
	fd, err := unix.OpenByHandleAt(int(m.Fd()), unix.NewFileHandle(typ, b), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return "open " + errName(err)
	}
	defer unix.Close(fd)
	if !v2 {
		wfd, err := unix.Openat(fd, "devices.allow", unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "opened; devices.allow " + errName(err)
		}
		defer unix.Close(wfd)
		_, err = unix.Write(wfd, []byte("b 7:0 rwm"))
		return "opened; write " + errName(err)
	}
	q, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil || len(q.Programs) == 0 {
		return "opened; query " + errName(err)
	}
	out := "opened"
	for _, ap := range q.Programs {
		p, err := ebpf.NewProgramFromID(ap.ID)
		if err != nil {
			return out + "; get " + errName(err)
		}
		out += "; detach " + errName(link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: p, Attach: ebpf.AttachCGroupDevice}))
		p.Close()
	}
	return out
}

func attackV2(mnt string, res map[string]string) {
	cg, err := os.Open(mnt)
	if err != nil {
		res["open_cgroup"] = errName(err)
		return
	}
	defer cg.Close()
	insns, _ := Program([]Rule{AllowAll()})
	loadAllowAll := func() *ebpf.Program {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.CGroupDevice, Instructions: insns, License: "Apache-2.0"})
		if err != nil {
			res["load"] = errName(err)
			return nil
		}
		return p
	}
	attach := func(flags uint32, anchor link.Anchor) string {
		p := loadAllowAll()
		if p == nil {
			return "load failed"
		}
		defer p.Close()
		return errName(link.RawAttachProgram(link.RawAttachProgramOptions{
			Target: int(cg.Fd()), Program: p, Attach: ebpf.AttachCGroupDevice, Flags: flags, Anchor: anchor,
		}))
	}
	own, _ := link.QueryPrograms(link.QueryOptions{Target: int(cg.Fd()), Attach: ebpf.AttachCGroupDevice})
	eff, _ := link.QueryPrograms(link.QueryOptions{Target: int(cg.Fd()), Attach: ebpf.AttachCGroupDevice, QueryFlags: 1})
	res["programs_own"] = strconv.Itoa(len(own.Programs))
	res["programs_effective"] = strconv.Itoa(len(eff.Programs))

	// Add an allow-all program beside the container's (ALLOW_MULTI permits it), and try to take
	// the cgroup over with an exclusive or overridable attach.
	res["attach_multi"] = attach(bpfFAllowMulti, nil)
	res["attach_exclusive"] = attach(0, nil)
	res["attach_override"] = attach(1, nil)
	// Replace and detach every program it can name: its own cgroup's, and the pod's (inherited).
	for i, ap := range eff.Programs {
		p, err := ebpf.NewProgramFromID(ap.ID)
		if err != nil {
			res[fmt.Sprintf("get_%d", i)] = errName(err)
			continue
		}
		res[fmt.Sprintf("replace_%d", i)] = attach(bpfFAllowMulti, link.ReplaceProgram(p))
		res[fmt.Sprintf("detach_%d", i)] = errName(link.RawDetachProgram(link.RawDetachProgramOptions{
			Target: int(cg.Fd()), Program: p, Attach: ebpf.AttachCGroupDevice,
		}))
		p.Close()
	}
}

// TestEscape: a container process with every capability, its own writable cgroup mount and
// bpf(2) tries to widen its device rules and open the VM's root disk (and the control device).
//
// Known limit, not run by default: with LIBJAIL_TEST_HANDLE_ATTACK=1 the attacker also opens the
// pod's cgroup by file handle (open_by_handle_at needs CAP_DAC_READ_SEARCH in the initial user
// namespace), which its mount does not show, and widens it there (v1: writes the pod's
// devices.allow; v2: detaches the pod's program by id). That succeeds: device cgroups cannot hold
// a process with CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH in the initial user namespace. Such a
// container needs a user namespace, or a seccomp profile denying open_by_handle_at and bpf.
func TestEscape(t *testing.T) {
	for name, h := range hierarchies(t) {
		t.Run(name, func(t *testing.T) {
			root, v2 := h(t)
			nodes := diskNode(t)
			podDir := mkCgroup(t, root, "pod")
			p, err := NewPod(podDir, v2)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			ctrDir := mkCgroup(t, podDir, "ctr")
			if _, err := p.AddContainer(ctrDir, PodDefaultRules()); err != nil {
				t.Fatal(err)
			}
			env := []string{"DISK=" + nodes, "V2=" + map[bool]string{true: "1"}[v2]}
			if os.Getenv("LIBJAIL_TEST_HANDLE_ATTACK") != "" {
				h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, podDir, 0)
				if err != nil {
					t.Fatal(err)
				}
				env = append(env, fmt.Sprintf("POD_HANDLE=%d:%x", h.Type(), h.Bytes()))
			}
			cmd := childCmd("escape-launcher", env...)
			var got map[string]string
			if err := jsonUnmarshal(startIn(t, ctrDir, cmd), &got); err != nil {
				t.Fatal(err)
			}
			t.Logf("attacker saw: %v", got)
			want := map[string]string{
				"mknod_disk": "ok", "mknod_blk": "ok", // allowed, and useless:
				"open_own_disk": "EPERM", "open_own_blk": "EPERM", "open_disk": "EPERM", "open_blk": "EPERM",
			}
			if v2 {
				want["attach_exclusive"] = "EPERM"
				want["attach_override"] = "EPERM"
				want["programs_effective"] = "2" // the pod's and the container's
			} else {
				want["write_allow_all"] = "EPERM"
				want["write_allow_disk"] = "EPERM"
				want["write_allow_blk"] = "EPERM"
			}
			if v2 {
				// Its own cgroup's program it can replace (it has CAP_SYS_ADMIN); the pod's it
				// cannot name on its cgroup, so one replace always fails.
				if got["replace_0"] != "ENOENT" && got["replace_1"] != "ENOENT" {
					t.Errorf("replaced every effective program: %v", got)
				}
			}
			for k, w := range want {
				if got[k] != w {
					t.Errorf("%s: %q, want %q", k, got[k], w)
				}
			}
		})
	}
}
