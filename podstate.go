package libjail

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/cgroups"
	"github.com/libjail/libjail/devices"
	"github.com/libjail/libjail/namespaces"
)

// podRecord is a persistent pod's file, StateDir/pods/<id>.json.
type podRecord struct {
	ID      string              `json:"id"`
	Cgroup  *cgroups.CgroupPlan `json:"cgroup"`
	Devices devices.PodState    `json:"devices"`
	Pinned  *namespaces.Pinned  `json:"pinned,omitempty"`
}

// podRef is how a persistent container names its pod in its own state.
type podRef struct {
	StateDir string `json:"stateDir"`
	ID       string `json:"id"`
}

func podFile(stateDir, id string) string { return filepath.Join(stateDir, "pods", id+".json") }

// lockPod serialises changes to a persistent pod's record across processes (flock on a lock file
// beside it). The returned func unlocks.
func lockPod(stateDir, id string) (func(), error) {
	if err := os.MkdirAll(filepath.Join(stateDir, "pods"), 0o711); err != nil {
		return nil, err
	}
	fd, err := unix.Open(podFile(stateDir, id)+".lock", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

func readPodRecord(stateDir, id string) (*podRecord, error) {
	b, err := os.ReadFile(podFile(stateDir, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("libjail: load pod %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	var r podRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("libjail: load pod %q: %w", id, err)
	}
	if r.ID != id || r.Cgroup == nil {
		return nil, fmt.Errorf("libjail: load pod %q: %w: damaged record", id, ErrInvalidSpec)
	}
	return &r, nil
}

func writePodRecord(stateDir string, r *podRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	path := podFile(stateDir, r.ID)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadPod finds a persistent pod made by NewPod with PodOptions.StateDir, in this process or
// another one. Its device rules are changed under a lock, each change read back from the record,
// so several processes may add and remove its containers.
func LoadPod(stateDir, id string, opts PodOptions) (*Pod, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	r, err := readPodRecord(stateDir, id)
	if err != nil {
		return nil, err
	}
	opts.StateDir = stateDir
	p := &Pod{id: id, opts: opts, log: discardIfNil(opts.Logger), containers: map[string]*Container{},
		cgPath: r.Cgroup.Path, cgPlan: r.Cgroup, pinned: r.Pinned, persisted: true}
	if p.cg, err = cgroups.New(r.Cgroup); err != nil {
		return nil, err
	}
	return p, nil
}

// devicesDo runs f on the pod's device rules. A persistent pod takes its lock, takes the rules
// over from the record, and writes them back after f; an in-memory pod uses its own.
func (p *Pod) devicesDo(f func(*devices.Pod) error) error {
	if p.opts.StateDir == "" {
		return f(p.devs)
	}
	return p.recordDo(func(r *podRecord, devs *devices.Pod) error {
		defer devs.Release() // the rules stay; only this handle goes
		return p.changeRecord(r, devs, f(devs))
	})
}

// recordDo takes a persistent pod's lock and its device rules over from the record for f.
func (p *Pod) recordDo(f func(*podRecord, *devices.Pod) error) error {
	unlock, err := lockPod(p.opts.StateDir, p.id)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := readPodRecord(p.opts.StateDir, p.id)
	if err != nil {
		return err
	}
	devs, err := devices.LoadPod(r.Devices)
	if err != nil {
		return err
	}
	return f(r, devs)
}

// changeRecord writes the pod's rules after a change (whose error is ferr) back to the record.
func (p *Pod) changeRecord(r *podRecord, devs *devices.Pod, ferr error) error {
	st, err := devs.State()
	if err == nil {
		r.Devices = st
		err = writePodRecord(p.opts.StateDir, r)
	}
	return errors.Join(ferr, err)
}

// addContainerRules applies a container's rules in the pod order: the pod grows first, then the
// container's own cgroup is restricted.
func (p *Pod) addContainerRules(dir string, rules []devices.Rule) error {
	return p.devicesDo(func(d *devices.Pod) error {
		_, err := d.AddContainer(dir, rules)
		return err
	})
}

// updateContainerRules hot-plugs: the pod first, then the container.
func (p *Pod) updateContainerRules(dir string, rules []devices.Rule) error {
	return p.devicesDo(func(d *devices.Pod) error {
		dc := d.Container(dir)
		if dc == nil {
			return fmt.Errorf("container cgroup %s: %w", dir, os.ErrNotExist)
		}
		return dc.Update(rules)
	})
}

// removeContainerRules takes a destroyed container's rules out of the pod's union.
func (p *Pod) removeContainerRules(dir string) error {
	return p.devicesDo(func(d *devices.Pod) error {
		if dc := d.Container(dir); dc != nil {
			return dc.Close()
		}
		return nil
	})
}

// closeRecordDevices detaches a persistent pod's device rules (the pod is being destroyed).
func (p *Pod) closeRecordDevices() error {
	return p.recordDo(func(_ *podRecord, devs *devices.Pod) error { return devs.Close() })
}
