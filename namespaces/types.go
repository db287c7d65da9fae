package namespaces

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Type is a namespace type with the spec's name for it.
type Type string

// The eight namespace types of the spec.
const (
	PID     Type = Type(specs.PIDNamespace)
	Network Type = Type(specs.NetworkNamespace)
	Mount   Type = Type(specs.MountNamespace)
	IPC     Type = Type(specs.IPCNamespace)
	UTS     Type = Type(specs.UTSNamespace)
	User    Type = Type(specs.UserNamespace)
	Cgroup  Type = Type(specs.CgroupNamespace)
	Time    Type = Type(specs.TimeNamespace)
)

// Types lists every type, in the order a plan keeps them.
var Types = []Type{User, Mount, PID, Network, IPC, UTS, Cgroup, Time}

var typeInfo = map[Type]struct {
	flag int    // CLONE_NEW*
	proc string // name under /proc/<pid>/ns/
}{
	PID:     {unix.CLONE_NEWPID, "pid"},
	Network: {unix.CLONE_NEWNET, "net"},
	Mount:   {unix.CLONE_NEWNS, "mnt"},
	IPC:     {unix.CLONE_NEWIPC, "ipc"},
	UTS:     {unix.CLONE_NEWUTS, "uts"},
	User:    {unix.CLONE_NEWUSER, "user"},
	Cgroup:  {unix.CLONE_NEWCGROUP, "cgroup"},
	Time:    {unix.CLONE_NEWTIME, "time"},
}

// Valid reports whether t is one of the spec's types.
func (t Type) Valid() bool { _, ok := typeInfo[t]; return ok }

// Flag is the CLONE_NEW* flag of t (0 for an unknown type).
func (t Type) Flag() int { return typeInfo[t].flag }

// ProcName is the file name of t under /proc/<pid>/ns/ ("net" for Network, "mnt" for Mount).
func (t Type) ProcName() string { return typeInfo[t].proc }

func typeOfFlag(flag int) Type {
	for t, i := range typeInfo {
		if i.flag == flag {
			return t
		}
	}
	return ""
}
