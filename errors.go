package libjail

import (
	"errors"
	"fmt"
)

// Step names one step of a container's setup; errors name the step that failed.
type Step string

// The steps, in the order they run.
const (
	StepPlan           Step = "plan"
	StepExecutable     Step = "seal executable"
	StepState          Step = "state"
	StepCgroup         Step = "cgroup"
	StepDevices        Step = "device rules"
	StepStartChild     Step = "start child"
	StepPlaceCgroup    Step = "place in cgroup"
	StepJoinNS         Step = "join namespaces"
	StepSendPlan       Step = "send plan"
	StepReceivePlan    Step = "receive plan"
	StepCgroupNS       Step = "cgroup namespace"
	StepPrepareRoot    Step = "prepare root"
	StepMount          Step = "mount"
	StepDeviceNodes    Step = "device nodes"
	StepRuntimeHooks   Step = "createRuntime hooks"
	StepContainerHooks Step = "createContainer hooks"
	StepEnterRoot      Step = "enter root"
	StepFinishRoot     Step = "finish root"
	StepHostname       Step = "hostname"
	StepCwd            Step = "cwd"
	StepRlimits        Step = "rlimits"
	StepUser           Step = "user"
	StepCapabilities   Step = "capabilities"
	StepNoNewPrivs     Step = "no_new_privs"
	StepSeccomp        Step = "seccomp"
	StepReady          Step = "ready"
	StepWaitStart      Step = "wait for start"
	StepStartHooks     Step = "startContainer hooks"
	StepExec           Step = "exec"
	StepKeyring        Step = "session keyring"
	StepSysctl         Step = "sysctl"
	StepTerminal       Step = "terminal"
	StepPersonality    Step = "personality"
	StepIOPriority     Step = "io priority"
	StepScheduler      Step = "scheduler"
	StepLabels         Step = "security labels"
	StepCPUAffinity    Step = "cpu affinity" // exec'd processes only
)

// StepError is the failure of one setup step, in the parent or in the child. It unwraps to the
// cause, which keeps the errno when there is one (errors.Is(err, unix.EPERM) works).
type StepError struct {
	ID   string // container id
	Step Step
	Err  error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("libjail: container %q: %s: %v", e.ID, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrChildDied means the child exited or was killed before it finished the step named by the
// surrounding StepError.
var ErrChildDied = errors.New("container child died")

// StateError is an operation that the container's current state does not allow (start twice,
// signal a stopped container, destroy a running one without force).
type StateError struct {
	ID    string
	Op    string
	State Status
}

func (e *StateError) Error() string {
	return fmt.Sprintf("libjail: container %q: cannot %s: container is %s", e.ID, e.Op, e.State)
}

// childSteps are the child's steps in order (seccomp appears twice: it loads at one of the two
// places, depending on no_new_privs); the parent names the one after the last the child reported
// when the child dies without a word.
var childSteps = []Step{
	StepJoinNS, StepReceivePlan, StepKeyring, StepCgroupNS, StepPrepareRoot, StepMount, StepDeviceNodes,
	StepRuntimeHooks, StepContainerHooks, StepEnterRoot, StepCwd, StepSysctl, StepFinishRoot, StepHostname,
	StepTerminal, StepRlimits, StepPersonality, StepIOPriority, StepScheduler, StepSeccomp, StepUser,
	StepCapabilities, StepNoNewPrivs, StepSeccomp, StepReady, StepWaitStart, StepStartHooks, StepLabels,
	StepExec,
}

// stepTracker follows the child's progress reports through childSteps.
type stepTracker struct{ idx int } // index of the last step reported done; -1 before the first

func newStepTracker() stepTracker { return stepTracker{idx: -1} }

// done records a reported step: the next occurrence after the last one.
func (t *stepTracker) done(s Step) {
	for i := t.idx + 1; i < len(childSteps); i++ {
		if childSteps[i] == s {
			t.idx = i
			return
		}
	}
}

// next is the step the child was in when it stopped reporting.
func (t *stepTracker) next() Step {
	if t.idx+1 < len(childSteps) {
		return childSteps[t.idx+1]
	}
	return childSteps[len(childSteps)-1]
}
