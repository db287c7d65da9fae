package devices

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// Pod keeps a pod cgroup's device rules as the union of its containers' rules, so that a container
// can never hold more than its pod, and the pod never more than its containers together (plus
// PodDefaultRules).
//
// The order, on v1 and v2 alike: NewPod restricts the pod cgroup (deny all, then the defaults)
// before any container runs; AddContainer and Update widen the pod first and then set the
// container's own rules, since a v1 child cannot be given what its parent lacks; Close of a
// container narrows the pod back. A container whose rules allow every device by default switches
// the pod to allow-all, for the rest of the pod's life (a pod's containers share more than devices
// in that mode, so narrowing it back would be a false promise).
//
// On v1 a pod in allow-all mode is written as "c *:* rwm" and "b *:* rwm" because the kernel
// refuses "a" on a cgroup with children; a container whose rules allow all and then deny some
// devices therefore needs an 'a' write its parent does not permit, and fails with EPERM. On v2 each
// cgroup gets its own program (see V2) and every mode works.
type Pod struct {
	mu         sync.Mutex
	dir        string
	v2         bool
	prog       *V2 // v2 only
	allowAll   bool
	containers map[*Container]struct{}
	closed     bool
}

// Container is one container cgroup in a Pod.
type Container struct {
	pod   *Pod
	dir   string
	rules []Rule
	state state
	prog  *V2 // v2 only
}

// NewPod restricts the pod cgroup dir to PodDefaultRules: v1 writes to its devices files (dir must
// have no children yet), or on v2 a device program attached to it. The caller creates and removes
// the directory.
func NewPod(dir string, v2 bool) (*Pod, error) {
	p := &Pod{dir: dir, v2: v2, containers: map[*Container]struct{}{}}
	if v2 {
		prog, err := AttachV2(dir, PodDefaultRules())
		if err != nil {
			return nil, fmt.Errorf("pod: %w", err)
		}
		p.prog = prog
		return p, nil
	}
	if err := ApplyV1(dir, PodDefaultRules()); err != nil {
		return nil, fmt.Errorf("pod: %w", err)
	}
	return p, nil
}

// target is the pod's state given its containers, with c (if not nil) taking rules.
func (p *Pod) target(c *Container, s state) state {
	if p.allowAll || s.allow {
		return state{allow: true}
	}
	u := effective(PodDefaultRules())
	for o := range p.containers {
		if o != c {
			u = union(u, o.state)
		}
	}
	return union(u, s)
}

func (p *Pod) apply(s state) error {
	var err error
	if p.v2 {
		err = p.prog.Replace(s.rules())
	} else {
		err = ApplyV1(p.dir, s.rules())
	}
	if err == nil && s.allow {
		p.allowAll = true
	}
	return err
}

func (p *Pod) applyContainer(c *Container, rules []Rule) error {
	if !p.v2 {
		return ApplyV1(c.dir, rules)
	}
	if c.prog == nil {
		prog, err := AttachV2(c.dir, rules)
		if err != nil {
			return err
		}
		c.prog = prog
		return nil
	}
	return c.prog.Replace(rules)
}

// AddContainer widens the pod by rules, then restricts the container cgroup dir (a child of the
// pod's) to rules. On error the pod is narrowed back and the container has no program.
func (p *Pod) AddContainer(dir string, rules []Rule) (*Container, error) {
	if err := validateRules(rules); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("pod: %w", os.ErrClosed)
	}
	c := &Container{pod: p, dir: dir}
	s := effective(rules)
	if err := p.apply(p.target(c, s)); err != nil {
		return nil, fmt.Errorf("pod %s: %w", p.dir, err)
	}
	if err := p.applyContainer(c, rules); err != nil {
		_ = p.apply(p.target(c, state{})) // best effort: the pod only ever had more than needed
		return nil, fmt.Errorf("container %s: %w", dir, err)
	}
	c.rules, c.state = append([]Rule(nil), rules...), s
	p.containers[c] = struct{}{}
	return c, nil
}

// Update gives the running container rules (hot-plug or unplug): the pod first, then the
// container. On error the container keeps its old rules.
func (c *Container) Update(rules []Rule) error {
	if err := validateRules(rules); err != nil {
		return err
	}
	p := c.pod
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.containers[c]; !ok {
		return fmt.Errorf("container: %w", os.ErrClosed)
	}
	s := effective(rules)
	if err := p.apply(p.target(c, union(c.state, s))); err != nil {
		return fmt.Errorf("pod %s: %w", p.dir, err)
	}
	if err := p.applyContainer(c, rules); err != nil {
		return fmt.Errorf("container %s: %w", c.dir, err)
	}
	c.rules, c.state = append([]Rule(nil), rules...), s
	// Now that the container no longer needs what it lost, the pod can drop it too.
	if err := p.apply(p.target(c, s)); err != nil {
		return fmt.Errorf("pod %s: %w", p.dir, err)
	}
	return nil
}

// Close detaches the container's program (v2) and narrows the pod to its remaining containers.
// The caller removes the container's cgroup.
func (c *Container) Close() error {
	p := c.pod
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.containers[c]; !ok {
		return nil
	}
	delete(p.containers, c)
	var errs []error
	if c.prog != nil {
		errs = append(errs, c.prog.Close())
	}
	if !p.closed {
		errs = append(errs, p.apply(p.target(nil, state{})))
	}
	return errors.Join(errs...)
}

// Close closes every container left and detaches the pod's program (v2). The caller removes the
// pod's cgroup.
func (p *Pod) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	var errs []error
	for c := range p.containers {
		if c.prog != nil {
			errs = append(errs, c.prog.Close())
		}
		delete(p.containers, c)
	}
	if p.prog != nil {
		errs = append(errs, p.prog.Close())
	}
	return errors.Join(errs...)
}

// AllowAll reports whether the pod has switched to allow-all mode.
func (p *Pod) AllowAll() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.allowAll
}
