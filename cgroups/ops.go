package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// freezeTimeout bounds how long Freeze waits for the kernel to report the cgroup frozen.
const freezeTimeout = 10 * time.Second

func (m *fsManager) Freeze() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.setFrozen(true); err != nil {
		return &FieldError{Field: "freeze", Err: err}
	}
	return nil
}

func (m *fsManager) Thaw() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.setFrozen(false); err != nil {
		return &FieldError{Field: "thaw", Err: err}
	}
	return nil
}

// setFrozen uses the v1 freezer when mounted, else cgroup.freeze of the unified hierarchy, and waits
// until the kernel reports the target state.
func (m *fsManager) setFrozen(frozen bool) error {
	if d := m.controllerDir("freezer"); d != "" {
		want := "THAWED"
		if frozen {
			want = "FROZEN"
		}
		return waitFor(func() (bool, error) {
			// Rewriting while FREEZING retries tasks that were busy (in vfork, say) the first time.
			if err := writeFile(d, "freezer.state", want); err != nil {
				return false, err
			}
			st, err := readFile(d, "freezer.state")
			return st == want, err
		}, func() {
			if frozen {
				_ = writeFile(d, "freezer.state", "THAWED")
			}
		})
	}
	if m.v2 == "" {
		return fmt.Errorf("%w: no freezer on this %s machine", ErrNotSupported, m.plan.Layout)
	}
	if err := writeFile(m.v2, "cgroup.freeze", boolStr(frozen)); err != nil {
		return err
	}
	return waitFor(func() (bool, error) {
		ev, err := readKV(m.v2, "cgroup.events")
		return (ev["frozen"] == 1) == frozen, err
	}, func() {
		if frozen {
			_ = writeFile(m.v2, "cgroup.freeze", "0")
		}
	})
}

// waitFor polls done until it reports true, an error, or freezeTimeout; undo runs on failure.
func waitFor(done func() (bool, error), undo func()) error {
	deadline := time.Now().Add(freezeTimeout)
	delay := time.Millisecond
	for {
		ok, err := done()
		if err == nil && ok {
			return nil
		}
		if err != nil || time.Now().After(deadline) {
			undo()
			if err == nil {
				err = fmt.Errorf("%w: state not reached within %s", unix.ETIMEDOUT, freezeTimeout)
			}
			return err
		}
		time.Sleep(delay)
		delay = min(delay*2, 100*time.Millisecond)
	}
}

func (m *fsManager) Kill() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.kill(); err != nil {
		return &FieldError{Field: "kill", Err: err}
	}
	return nil
}

// kill uses cgroup.kill (kernel 5.14+) when there is a cgroup2 directory: the kernel kills the whole
// subtree at once, racing no fork. Without it, the cgroup is frozen (v1 freezer or cgroup.freeze) so
// nothing can fork while every listed process gets SIGKILL, then thawed so the signals are delivered.
func (m *fsManager) kill() error {
	if m.v2 != "" {
		err := writeFile(m.v2, "cgroup.kill", "1")
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	var dir string
	if len(m.v1) > 0 {
		dir = m.v1[0].dir
		if d := m.controllerDir("freezer"); d != "" {
			dir = d
		}
	} else {
		dir = m.v2
	}
	frozen := m.setFrozen(true) == nil
	var errs []error
	// Without a freezer a process may fork between the listing and the signal: list again until a
	// pass finds nobody (bounded, since signals to a frozen cgroup only land after the thaw).
	for pass := 0; pass < 10; pass++ {
		found := 0
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			pids, err := readPids(p)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			for _, pid := range pids {
				found++
				if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
					errs = append(errs, fmt.Errorf("kill %d: %w", pid, err))
				}
			}
			return nil
		})
		if frozen || found == 0 || len(errs) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if frozen {
		if err := m.setFrozen(false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *fsManager) Update(res *specs.LinuxResources) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, err := Plan(m.plan.Path, res, m.plan.Layout, Options{Hierarchies: m.plan.Hierarchies})
	if err != nil {
		return err
	}
	if (p.CheckBeforeUpdate || m.plan.CheckBeforeUpdate) && p.MemoryLimit > 0 {
		usage, err := m.memoryUsage()
		if err != nil {
			return &FieldError{Field: "linux.resources.memory.checkBeforeUpdate", Err: err}
		}
		if uint64(p.MemoryLimit) < usage {
			return fieldErr("linux.resources.memory.limit", ErrInvalid,
				"%d is below the current usage %d (checkBeforeUpdate)", p.MemoryLimit, usage)
		}
	}
	if err := m.v2CheckControllers(p.Writes); err != nil {
		return err
	}
	if err := m.apply(p.Writes); err != nil {
		return err
	}
	if res != nil && res.Memory != nil && res.Memory.CheckBeforeUpdate != nil {
		m.plan.CheckBeforeUpdate = *res.Memory.CheckBeforeUpdate
	}
	return nil
}

func (m *fsManager) memoryUsage() (uint64, error) {
	if d := m.controllerDir("memory"); d != "" {
		return readUint(d, "memory.usage_in_bytes")
	}
	if m.v2 != "" {
		return readUint(m.v2, "memory.current")
	}
	return 0, fmt.Errorf("%w: no memory controller", ErrNotSupported)
}

// pagesizes lists the huge page sizes the kernel offers, in the spec's notation (2MB, 1GB).
func pagesizes() []string {
	ents, _ := os.ReadDir("/sys/kernel/mm/hugepages")
	var out []string
	for _, e := range ents {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		kb = strings.TrimSuffix(kb, "kB")
		var n uint64
		if _, err := fmt.Sscan(kb, &n); err != nil {
			continue
		}
		switch {
		case n >= 1<<20 && n%(1<<20) == 0:
			out = append(out, fmt.Sprintf("%dGB", n>>20))
		case n >= 1<<10 && n%(1<<10) == 0:
			out = append(out, fmt.Sprintf("%dMB", n>>10))
		default:
			out = append(out, fmt.Sprintf("%dKB", n))
		}
	}
	return out
}
