package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Manager creates and operates one cgroup (in every mounted hierarchy) on cgroupfs.
type Manager interface {
	// Create makes the cgroup's directory in every hierarchy and applies the planned resources.
	// On error nothing it created is left behind.
	Create() error
	// Place moves a process into the cgroup in every hierarchy (cgroup.procs).
	Place(pid int) error
	// CgroupFD opens the cgroup2 directory (O_PATH|O_DIRECTORY|O_CLOEXEC) for CLONE_INTO_CGROUP.
	// It returns ErrNotSupported when the layout has no cgroup2 hierarchy.
	CgroupFD() (*os.File, error)
	// Update applies new resources to the existing cgroup.
	Update(res *specs.LinuxResources) error
	// Stats reads the cgroup's counters.
	Stats() (*Stats, error)
	// Freeze stops every process of the cgroup and returns once the kernel reports it frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// Kill sends SIGKILL to every process in the cgroup and its descendants.
	Kill() error
	// Destroy removes the cgroup (and cgroups below it) from every hierarchy, retrying while busy.
	Destroy() error
	// DevicesDir is where device rules go: the v1 devices controller's directory (v2=false, also on
	// Hybrid), or the cgroup2 directory for an eBPF program (v2=true). "" means neither exists, which
	// a caller enforcing device rules must treat as an error.
	DevicesDir() (dir string, v2 bool)
	// Paths maps each controller (and "unified") to the cgroup's directory for it.
	Paths() map[string]string
	// Pids lists the processes of the cgroup itself (every hierarchy holds the same ones).
	Pids() ([]int, error)
	// OOMEvents delivers an event each time the kernel's OOM handling triggers in the cgroup, until
	// the returned stop function is called or the cgroup is removed (then the channel closes).
	OOMEvents() (events <-chan OOMEvent, stop func(), err error)
}

// New returns a manager for a plan. It touches nothing until a method is called; it can also take
// over a cgroup created by another process from the same plan.
func New(plan *CgroupPlan) (Manager, error) {
	if plan == nil || plan.Path == "" || len(plan.Dirs) == 0 {
		return nil, fieldErr("linux.cgroupsPath", ErrInvalid, "empty plan")
	}
	m := &fsManager{plan: plan}
	for _, h := range plan.Hierarchies {
		dir, ok := plan.Dirs[h.Key()]
		if !ok {
			return nil, fieldErr("linux.cgroupsPath", ErrInvalid, "plan has no directory for hierarchy %s", h.Key())
		}
		if h.Unified {
			m.v2 = dir
			m.v2Mount = h.Mount
			continue
		}
		m.v1 = append(m.v1, v1Dir{hierarchy: h, dir: dir})
	}
	return m, nil
}

type v1Dir struct {
	hierarchy Hierarchy
	dir       string
}

// fsManager drives cgroupfs directly and serves V1, V2 and Hybrid alike: each operation uses the v1
// controller's files when that controller is mounted, else the cgroup2 ones (ops.go, stats.go, oom.go).
type fsManager struct {
	mu      sync.Mutex
	plan    *CgroupPlan
	v1      []v1Dir
	v2      string // cgroup2 directory, "" without a unified hierarchy
	v2Mount string
	// created lists the directories Create made, parents before children, so Destroy can remove the
	// intermediate ones too.
	created []string
}

func (m *fsManager) controllerDir(c string) string {
	for _, d := range m.v1 {
		if d.hierarchy.has(c) {
			return d.dir
		}
	}
	return ""
}

func (m *fsManager) Pids() ([]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir := m.v2
	if dir == "" && len(m.v1) > 0 {
		dir = m.v1[0].dir
	}
	if dir == "" {
		return nil, &FieldError{Field: "pids", Err: ErrNoCgroups}
	}
	pids, err := readPids(dir)
	if err != nil {
		return nil, &FieldError{Field: "pids", Err: err}
	}
	return pids, nil
}

func (m *fsManager) Paths() map[string]string {
	out := map[string]string{}
	for _, d := range m.v1 {
		for _, c := range d.hierarchy.Controllers {
			out[c] = d.dir
		}
	}
	if m.v2 != "" {
		out[UnifiedKey] = m.v2
		for _, h := range m.plan.Hierarchies {
			if h.Unified {
				for _, c := range h.Controllers {
					if _, ok := out[c]; !ok {
						out[c] = m.v2
					}
				}
			}
		}
	}
	return out
}

func (m *fsManager) DevicesDir() (string, bool) {
	if d := m.controllerDir("devices"); d != "" {
		return d, false
	}
	return m.v2, m.v2 != ""
}

func (m *fsManager) Create() (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer func() {
		// Someone else's cgroup is never removed: only what this Create made.
		if err != nil && !errors.Is(err, ErrExists) {
			m.removeAll()
		}
	}()
	// Fail closed on a plan whose mounts are not cgroup filesystems (a stale or forged plan would
	// otherwise make directories and write values anywhere).
	for _, h := range m.plan.Hierarchies {
		if err := checkCgroupFS(h); err != nil {
			return &FieldError{Field: "create", Err: err}
		}
	}
	if err := m.makeDirs(); err != nil {
		return err
	}
	if err := m.v2CheckControllers(m.plan.Writes); err != nil {
		return err
	}
	return m.apply(m.plan.Writes)
}

// treeMu serialises, within the process, making cgroups (with enabling controllers in the new
// parents) and removing the parents Create made: a concurrent Create sharing a parent (like /libjail)
// would otherwise find it between its mkdir and its controllers being enabled, or lose it to a
// Destroy between its stat and its mkdir.
var treeMu sync.Mutex

// makeDirs makes the cgroup in every hierarchy, recording what it made in m.created.
func (m *fsManager) makeDirs() error {
	treeMu.Lock()
	defer treeMu.Unlock()
	// A container's cgroup is its own: an existing one (another container's, the agent's, a
	// system cgroup) would get this container's limits and device rules, and Destroy would kill
	// every process in it.
	dirs := []string{m.v2}
	for _, d := range m.v1 {
		dirs = append(dirs, d.dir)
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if _, err := os.Lstat(d); err == nil {
			return &FieldError{Field: "linux.cgroupsPath", Err: fmt.Errorf("%w: %s", ErrExists, d)}
		}
	}
	for _, d := range m.v1 {
		made, err := mkdirAll(d.dir)
		m.created = append(m.created, made...)
		if err != nil {
			return &FieldError{Field: "create", Err: err}
		}
		if d.hierarchy.has("cpuset") {
			if err := cpusetInherit(made); err != nil {
				return &FieldError{Field: "create", Err: err}
			}
		}
	}
	if m.v2 != "" {
		made, err := mkdirAll(m.v2)
		m.created = append(m.created, made...)
		if err != nil {
			return &FieldError{Field: "create", Err: err}
		}
		if err := m.v2EnableControllers(made); err != nil {
			return &FieldError{Field: "create", Err: err}
		}
	}
	return nil
}

// mkdirAll makes dir and its missing parents, returning those it made, parents first.
func mkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if d == "/" {
			break
		}
	}
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := unix.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return made, &os.PathError{Op: "mkdir", Path: missing[i], Err: err}
		}
		made = append(made, missing[i])
	}
	return made, nil
}

// cpusetInherit fills cpuset.cpus and cpuset.mems of new v1 cpuset cgroups from their parents: a v1
// cpuset cgroup starts empty and refuses processes until both are set.
func cpusetInherit(made []string) error {
	for _, d := range made {
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := readFile(d, f)
			if err != nil {
				return err
			}
			if cur != "" {
				continue
			}
			v, err := readFile(filepath.Dir(d), f)
			if err != nil {
				return err
			}
			if err := writeFile(d, f, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply writes values in order. A v1 memory limit refused next to a memsw limit is retried after it:
// the kernel wants memsw >= limit at every step, so raising both needs memsw first.
func (m *fsManager) apply(ws []Write) error {
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		err := m.write(w)
		if err != nil && w.File == "memory.limit_in_bytes" && i+1 < len(ws) && ws[i+1].File == "memory.memsw.limit_in_bytes" {
			if err2 := m.write(ws[i+1]); err2 == nil {
				err = m.write(w)
				i++
			}
		}
		if err != nil {
			return &FieldError{Field: w.Field, Err: fmt.Errorf("write %s: %w", w, err)}
		}
	}
	return nil
}

func (m *fsManager) write(w Write) error {
	dir, ok := m.plan.Dirs[w.Hierarchy]
	if !ok {
		return fmt.Errorf("%w: no hierarchy %q", ErrInvalid, w.Hierarchy)
	}
	err := writeFile(dir, w.File, w.Value)
	if w.AltFile != "" && errors.Is(err, os.ErrNotExist) {
		err = writeFile(dir, w.AltFile, w.AltValue)
	}
	return err
}

func (m *fsManager) Place(pid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pid <= 0 {
		return fieldErr("place", ErrInvalid, "pid %d", pid)
	}
	s := strconv.Itoa(pid)
	for _, d := range m.v1 {
		if err := writeFile(d.dir, "cgroup.procs", s); err != nil {
			return &FieldError{Field: "place", Err: err}
		}
	}
	if m.v2 != "" {
		if err := writeFile(m.v2, "cgroup.procs", s); err != nil {
			return &FieldError{Field: "place", Err: err}
		}
	}
	return nil
}

func (m *fsManager) CgroupFD() (*os.File, error) {
	if m.v2 == "" {
		return nil, fmt.Errorf("cgroup fd: %w: no cgroup v2 hierarchy", ErrNotSupported)
	}
	fd, err := unix.Open(m.v2, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: m.v2, Err: err}
	}
	return os.NewFile(uintptr(fd), m.v2), nil
}

func (m *fsManager) Destroy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removeAll()
}

// removeAll removes the cgroup in every hierarchy, then the parents Create made (those may be shared
// with other cgroups by now: a busy one is left).
func (m *fsManager) removeAll() error {
	var errs []error
	dirs := []string{m.v2}
	for _, d := range m.v1 {
		dirs = append(dirs, d.dir)
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if err := removeTree(d); err != nil {
			errs = append(errs, err)
		}
	}
	created := append([]string(nil), m.created...)
	sort.Slice(created, func(i, j int) bool { return len(created[i]) > len(created[j]) })
	treeMu.Lock()
	defer treeMu.Unlock()
	for _, d := range created {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, &os.PathError{Op: "rmdir", Path: d, Err: err})
		}
	}
	m.created = nil
	if err := errors.Join(errs...); err != nil {
		return &FieldError{Field: "destroy", Err: err}
	}
	return nil
}

// v2EnableControllers turns on, in the cgroup2 directories this Create made above the cgroup (and in
// the cgroup itself for a pod), every controller their parent delegates: a cgroup2 controller's files
// only appear in a child when its parent's subtree_control has it. Existing cgroups, which belong to
// someone else, are never written: what they do not delegate is reported by v2CheckControllers.
func (m *fsManager) v2EnableControllers(made []string) error {
	for _, dir := range made {
		if dir == m.v2 && !m.plan.Pod {
			continue // the leaf: its processes would be refused once it delegates controllers
		}
		avail, err := readFile(dir, "cgroup.controllers")
		if err != nil {
			return err
		}
		on, err := readFile(dir, "cgroup.subtree_control")
		if err != nil {
			return err
		}
		enabled := map[string]bool{}
		for _, c := range strings.Fields(on) {
			enabled[c] = true
		}
		var add []string
		for _, c := range strings.Fields(avail) {
			if !enabled[c] {
				add = append(add, "+"+c)
			}
		}
		if len(add) > 0 {
			if err := writeFile(dir, "cgroup.subtree_control", strings.Join(add, " ")); err != nil {
				return fmt.Errorf("enable %s in %s: %w", strings.Join(add, " "), dir, err)
			}
		}
	}
	return nil
}

// v2CheckControllers makes sure the cgroup2 directory has the controller of every unified write,
// naming the field and the ancestor's subtree_control that lacks it otherwise (the kernel would only
// say ENOENT for the interface file).
func (m *fsManager) v2CheckControllers(ws []Write) error {
	if m.v2 == "" {
		return nil
	}
	var have map[string]bool
	for _, w := range ws {
		c, _, _ := strings.Cut(w.File, ".")
		if w.Hierarchy != UnifiedKey || c == "cgroup" {
			continue
		}
		if have == nil {
			avail, err := readFile(m.v2, "cgroup.controllers")
			if err != nil {
				return &FieldError{Field: w.Field, Err: err}
			}
			have = map[string]bool{}
			for _, x := range strings.Fields(avail) {
				have[x] = true
			}
		}
		if !have[c] {
			return fieldErr(w.Field, ErrNotSupported, "controller %s is not enabled in %s", c, m.v2Missing(c))
		}
	}
	return nil
}

// v2Missing names the cgroup.subtree_control of the topmost ancestor that does not delegate c.
func (m *fsManager) v2Missing(c string) string {
	parent := filepath.Dir(m.v2)
	rel, err := filepath.Rel(m.v2Mount, parent)
	if err != nil || strings.HasPrefix(rel, "..") {
		return filepath.Join(parent, "cgroup.subtree_control")
	}
	dir := m.v2Mount
	els := []string{}
	if rel != "." {
		els = strings.Split(rel, "/")
	}
	for i := 0; ; i++ {
		on, err := readFile(dir, "cgroup.subtree_control")
		if err != nil || !slices.Contains(strings.Fields(on), c) || i == len(els) {
			return filepath.Join(dir, "cgroup.subtree_control")
		}
		dir = filepath.Join(dir, els[i])
	}
}

// checkCgroupFS verifies that a hierarchy's mount point holds the cgroup filesystem of its version.
func checkCgroupFS(h Hierarchy) error {
	var st unix.Statfs_t
	if err := unix.Statfs(h.Mount, &st); err != nil {
		return &os.PathError{Op: "statfs", Path: h.Mount, Err: err}
	}
	want := int64(unix.CGROUP_SUPER_MAGIC)
	if h.Unified {
		want = unix.CGROUP2_SUPER_MAGIC
	}
	if int64(st.Type) != want {
		return fmt.Errorf("%w: %s is not a cgroup%s mount (fs type %#x)", ErrInvalid, h.Mount,
			map[bool]string{true: "2", false: " v1"}[h.Unified], st.Type)
	}
	return nil
}
