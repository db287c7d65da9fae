package devices

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// bpfFAllowMulti is BPF_F_ALLOW_MULTI: programs of this cgroup and of its ancestors all run, and
// an access is allowed only when every one of them allows it.
const bpfFAllowMulti = 1 << 1

// V2 is a device program attached to one cgroup v2 directory.
//
// It is attached with BPF_PROG_ATTACH and BPF_F_ALLOW_MULTI, not with a bpf_link: the attachment
// belongs to the cgroup and survives the process that made it (a runtime command that exits, an
// agent that restarts), while a link would detach when its last fd closes and leave the container
// unrestricted. Because of ALLOW_MULTI, a program attached to a descendant cgroup can only narrow
// what this one allows.
type V2 struct {
	dir   string
	cg    *os.File
	prog  *ebpf.Program
	rules []Rule
}

// AttachV2 generates, loads and attaches the program for rules to the cgroup v2 directory dir
// (needs CAP_SYS_ADMIN in the initial user namespace).
func AttachV2(dir string, rules []Rule) (*V2, error) {
	prog, err := load(rules)
	if err != nil {
		return nil, err
	}
	cg, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("device program: %w", err)
	}
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: int(cg.Fd()), Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: bpfFAllowMulti,
	})
	if err != nil {
		prog.Close()
		cg.Close()
		return nil, fmt.Errorf("device program: attach to %s: %w", dir, err)
	}
	return &V2{dir: dir, cg: cg, prog: prog, rules: append([]Rule(nil), rules...)}, nil
}

func load(rules []Rule) (*ebpf.Program, error) {
	insns, err := Program(rules)
	if err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         "libjail_devices",
		Type:         ebpf.CGroupDevice,
		Instructions: insns,
		License:      "Apache-2.0",
	}, ebpf.ProgramOptions{LogDisabled: true})
	if err != nil {
		return nil, fmt.Errorf("device program: load: %w", err)
	}
	return prog, nil
}

// Replace swaps the attached program for one generated from rules in a single BPF_PROG_ATTACH
// with BPF_F_REPLACE, so the cgroup is never without a program. On error the old program stays.
func (v *V2) Replace(rules []Rule) error {
	if v.prog == nil {
		return fmt.Errorf("device program: %s: %w", v.dir, os.ErrClosed)
	}
	prog, err := load(rules)
	if err != nil {
		return err
	}
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: int(v.cg.Fd()), Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: bpfFAllowMulti,
		Anchor: link.ReplaceProgram(v.prog),
	})
	if err != nil {
		prog.Close()
		return fmt.Errorf("device program: replace on %s: %w", v.dir, err)
	}
	v.prog.Close()
	v.prog, v.rules = prog, append([]Rule(nil), rules...)
	return nil
}

// Rules returns the rules of the attached program.
func (v *V2) Rules() []Rule { return append([]Rule(nil), v.rules...) }

// ProgramID returns the kernel's id of the attached program (as listed by bpftool cgroup show).
func (v *V2) ProgramID() (ebpf.ProgramID, error) {
	if v.prog == nil {
		return 0, os.ErrClosed
	}
	info, err := v.prog.Info()
	if err != nil {
		return 0, err
	}
	id, _ := info.ID()
	return id, nil
}

// Close detaches the program and releases it. A cgroup already removed counts as detached.
func (v *V2) Close() error {
	if v.prog == nil {
		return nil
	}
	err := link.RawDetachProgram(link.RawDetachProgramOptions{
		Target: int(v.cg.Fd()), Program: v.prog, Attach: ebpf.AttachCGroupDevice,
	})
	if errors.Is(err, unix.ENOENT) {
		err = nil
	}
	v.prog.Close()
	v.cg.Close()
	v.prog, v.cg = nil, nil
	if err != nil {
		return fmt.Errorf("device program: detach from %s: %w", v.dir, err)
	}
	return nil
}

// release closes the handles and leaves the program attached.
// Release drops this handle's fds without detaching: the program stays attached and in force.
// A process that took a program over with OpenV2 and is done with it calls this.
func (v *V2) Release() { v.release() }

func (v *V2) release() {
	if v == nil || v.prog == nil {
		return
	}
	v.prog.Close()
	v.cg.Close()
	v.prog, v.cg = nil, nil
}

// AttachedPrograms lists the ids of the device programs attached to the cgroup v2 directory dir
// itself (not inherited ones).
func AttachedPrograms(dir string) ([]ebpf.ProgramID, error) {
	cg, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer cg.Close()
	res, err := link.QueryPrograms(link.QueryOptions{Target: int(cg.Fd()), Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return nil, err
	}
	ids := make([]ebpf.ProgramID, 0, len(res.Programs))
	for _, p := range res.Programs {
		ids = append(ids, p.ID)
	}
	return ids, nil
}

// OpenV2 takes over the program with id attached to the cgroup v2 directory dir by an earlier
// AttachV2, possibly in another process (its ProgramID, saved with the container's state), so it
// can be replaced or detached. rules are what it was generated from, for Rules.
func OpenV2(dir string, id ebpf.ProgramID, rules []Rule) (*V2, error) {
	ids, err := AttachedPrograms(dir)
	if err != nil {
		return nil, fmt.Errorf("device program: %w", err)
	}
	if !slices.Contains(ids, id) {
		return nil, fmt.Errorf("device program: %d is not attached to %s: %w", id, dir, os.ErrNotExist)
	}
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return nil, fmt.Errorf("device program %d: %w", id, err)
	}
	cg, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("device program: %w", err)
	}
	return &V2{dir: dir, cg: cg, prog: prog, rules: append([]Rule(nil), rules...)}, nil
}
