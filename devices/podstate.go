package devices

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
)

// PodState is what another process needs to take a Pod over (JSON): an agent that restarts, or a
// runtime command line where each invocation is a new process.
type PodState struct {
	Dir        string           `json:"dir"`
	V2         bool             `json:"v2"`
	AllowAll   bool             `json:"allowAll,omitempty"`
	Program    ebpf.ProgramID   `json:"program,omitempty"` // v2: the pod cgroup's program
	Containers []ContainerState `json:"containers,omitempty"`
}

// ContainerState is one container of a PodState.
type ContainerState struct {
	Dir     string         `json:"dir"`
	Rules   []Rule         `json:"rules"`
	Program ebpf.ProgramID `json:"program,omitempty"` // v2
}

// State returns what LoadPod needs to take this pod over.
func (p *Pod) State() (PodState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return PodState{}, fmt.Errorf("pod: %w", os.ErrClosed)
	}
	s := PodState{Dir: p.dir, V2: p.v2, AllowAll: p.allowAll}
	var err error
	if p.prog != nil {
		if s.Program, err = p.prog.ProgramID(); err != nil {
			return PodState{}, err
		}
	}
	for c := range p.containers {
		cs := ContainerState{Dir: c.dir, Rules: append([]Rule(nil), c.rules...)}
		if c.prog != nil {
			if cs.Program, err = c.prog.ProgramID(); err != nil {
				return PodState{}, err
			}
		}
		s.Containers = append(s.Containers, cs)
	}
	return s, nil
}

// LoadPod takes over a pod from its State, adopting the attached programs (v2) without changing
// any rule. The Pod and its containers can then be updated and closed as if made here.
func LoadPod(s PodState) (*Pod, error) {
	p := &Pod{dir: s.Dir, v2: s.V2, allowAll: s.AllowAll, containers: map[*Container]struct{}{}}
	if s.V2 {
		prog, err := OpenV2(s.Dir, s.Program, nil)
		if err != nil {
			return nil, fmt.Errorf("pod: %w", err)
		}
		p.prog = prog
	}
	for _, cs := range s.Containers {
		if err := validateRules(cs.Rules); err != nil {
			p.release()
			return nil, fmt.Errorf("container %s: %w", cs.Dir, err)
		}
		c := &Container{pod: p, dir: cs.Dir, rules: cs.Rules, state: effective(cs.Rules)}
		if s.V2 {
			prog, err := OpenV2(cs.Dir, cs.Program, cs.Rules)
			if err != nil {
				p.release()
				return nil, fmt.Errorf("container: %w", err)
			}
			c.prog = prog
		}
		p.containers[c] = struct{}{}
	}
	if p.prog != nil {
		p.prog.rules = p.target(nil, state{}).rules()
	}
	return p, nil
}

// release drops the handles of a pod that failed to load, leaving every program attached: they
// still restrict running containers.
func (p *Pod) release() {
	for c := range p.containers {
		c.prog.release()
	}
	p.prog.release()
}

// Container returns the pod's container whose cgroup is dir, or nil.
func (p *Pod) Container(dir string) *Container {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.containers {
		if c.dir == dir {
			return c
		}
	}
	return nil
}

// Release drops this handle's fds without detaching or changing anything: every rule stays in
// force. A process that took a pod over with LoadPod for one change calls it when done.
func (p *Pod) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.release()
}
