package libjail

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/capabilities"
	"github.com/libjail/libjail/devices"
	"github.com/libjail/libjail/mounts"
	"github.com/libjail/libjail/seccomp"
	"github.com/libjail/libjail/syncpipe"
)

// The parent↔child protocol, in order:
//
//	parent → child  childPlan     everything the child does, planned and validated by the parent
//	child → parent  progressMsg   after each step (the parent names the last one if the child dies)
//	child → parent  hooksMsg      (only with prestart/createRuntime hooks) mounts done, before pivot_root
//	parent → child  resumeMsg     the parent ran those hooks
//	child → parent  ptyMsg        (only with process.terminal) the pty master, after entering the root
//	child → parent  listenerMsg   (only with SCMP_ACT_NOTIFY) the seccomp listener fd, after loading
//	parent → child  resumeMsg     the parent handed the listener to the seccomp agent
//	child → parent  readyMsg      set up, held at the start barrier
//	parent → child  startMsg      (Start)
//	child → parent  execMsg       about to execve; the socket then closes on exec (O_CLOEXEC)
//
// Any failure in the child is a syncpipe.StepError instead of the next message.
var protocol = syncpipe.NewProtocol(&childPlan{}, &progressMsg{}, &hooksMsg{}, &resumeMsg{}, &listenerMsg{},
	&readyMsg{}, &startMsg{}, &execMsg{}, &ptyMsg{})

// childPlan is all the child needs: plain data, planned by the parent.
type childPlan struct {
	ID string
	// Exec marks an extra process for a running container: it has joined the container's
	// namespaces and cgroup already, so only the process steps run.
	Exec     bool
	Mounts   *mounts.RootfsPlan
	Nodes    []devices.Node
	UserNS   bool
	CgroupNS bool // unshare a cgroup namespace once placed in the cgroup
	// JoinedMountNS: the child joined another container's mount namespace, whose root it already
	// has: the root filesystem steps are skipped.
	JoinedMountNS bool `json:",omitempty"`
	// StartFIFO is the fd of the start barrier FIFO (O_PATH) when the container is persistent.
	StartFIFO  int `json:",omitempty"`
	Hostname   *string
	Domainname *string
	Process    processPlan
	Caps       capabilities.Set
	Seccomp    *seccomp.Program
	// State is the OCI state hooks get on stdin (status "creating"; pid as the agent sees it).
	State specs.State
	// RuntimeHooks asks the child to stop before pivot_root for the parent's createRuntime hooks.
	RuntimeHooks    bool
	CreateContainer []specs.Hook
	StartContainer  []specs.Hook
	// Process-level settings planned in sysctl.go, procattr.go and terminal.go.
	Sysctls  []sysctl      `json:",omitempty"`
	Attrs    procAttrs     `json:",omitempty"`
	Terminal *terminalPlan `json:",omitempty"`
	Affinity *cpuAffinity  `json:",omitempty"` // exec'd processes only
}

func (*childPlan) Kind() string { return "plan" }

type progressMsg struct{ Step Step }

func (*progressMsg) Kind() string { return "progress" }

type hooksMsg struct{}

func (*hooksMsg) Kind() string { return "hooks" }

type resumeMsg struct{}

func (*resumeMsg) Kind() string { return "resume" }

// listenerMsg carries the seccomp notify listener fd (SCM_RIGHTS).
type listenerMsg struct{}

func (*listenerMsg) Kind() string { return "seccomp-listener" }

type readyMsg struct{}

func (*readyMsg) Kind() string { return "ready" }

type startMsg struct{}

func (*startMsg) Kind() string { return "start" }

type execMsg struct{}

func (*execMsg) Kind() string { return "exec" }
