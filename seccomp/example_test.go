package seccomp_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/libjail/libjail/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The parent compiles the spec's profile and sends the program to the child as JSON.
func ExampleCompile() {
	p, err := seccomp.Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mount", "umount2"}, Action: specs.ActErrno},
		},
	}, seccomp.Options{Logger: slog.Default()})
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, _ := json.Marshal(p)
	fmt.Println(p.Notify, seccomp.FlagString(p.Flags), len(msg) > 0)
	// Output: false TSYNC true
}

func ExampleDefault() {
	p, err := seccomp.Compile(seccomp.Default(), seccomp.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.DefaultAction, p.StubLen > 0)
	// Output: SCMP_ACT_ERRNO(1) true
}

// In the child, right before execve, with no_new_privs set or CAP_SYS_ADMIN still held.
func ExampleProgram_Load() {
	var p seccomp.Program
	if err := json.NewDecoder(os.Stdin).Decode(&p); err != nil {
		return
	}
	listener, err := p.Load()
	if err != nil {
		return
	}
	if listener != nil {
		// Hand the listener to the parent (over syncpipe), which calls SendListener.
		defer listener.Close()
	}
}

// In the parent, once the child has passed the listener back.
func ExampleSendListener() {
	var (
		p        *seccomp.Program // from Compile
		listener *os.File         // received from the child
		pid      int
	)
	err := seccomp.SendListener(p, listener, specs.ContainerProcessState{
		State: specs.State{ID: "web", Status: specs.StateCreating, Pid: pid, Bundle: "/run/bundles/web"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
