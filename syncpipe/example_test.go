package syncpipe_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/libjail/libjail/syncpipe"
)

// The protocol is a list of message types, the same on both sides.
type (
	// ExamplePlan is what the parent tells the child to do.
	ExamplePlan struct{ Hostname string }
	// ExampleReady is the child's report that it is ready to exec.
	ExampleReady struct{}
)

func (*ExamplePlan) Kind() string { return "example.plan" }
func (ExampleReady) Kind() string { return "example.ready" }

var exampleProto = syncpipe.NewProtocol(&ExamplePlan{}, ExampleReady{})

// Example shows both sides of a protocol in one process. In real use the child's side runs in
// the child process, after exec.Cmd started it with the child's end in ExtraFiles.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	parent, childEnd, err := exampleProto.Pair()
	if err != nil {
		panic(err)
	}
	defer parent.Close()
	child, err := exampleProto.FromFile(childEnd) // in the child: os.NewFile(3, "sync")
	if err != nil {
		panic(err)
	}
	defer child.Close()

	// Parent: send the plan.
	if err := parent.Send(ctx, &ExamplePlan{Hostname: "box"}); err != nil {
		panic(err)
	}
	// Child: receive it, fail a step, report the failure.
	plan, _, err := syncpipe.Receive[*ExamplePlan](ctx, child)
	if err != nil {
		panic(err)
	}
	_, err = os.ReadFile("/nonexistent/etc/hostname." + plan.Hostname)
	child.SendError(ctx, "read-hostname", err)

	// Parent: wait for ready; the step error comes back as an error with its errno.
	_, _, err = syncpipe.Receive[ExampleReady](ctx, parent)
	var se *syncpipe.StepError
	fmt.Println(errors.As(err, &se), se.Step, errors.Is(err, unix.ENOENT), errors.Is(err, os.ErrNotExist))
	// Output: true read-hostname true true
}

// ExampleProtocol_Pair starts a child process (here the current binary, standing for the
// agent's own executable) with the child's end of the socket as fd 3.
func ExampleProtocol_Pair() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	parent, childEnd, err := exampleProto.Pair()
	if err != nil {
		panic(err)
	}
	defer parent.Close()
	cmd := exec.Command("/proc/self/exe", "init")
	cmd.ExtraFiles = []*os.File{childEnd} // fd 3 in the child
	err = cmd.Start()
	childEnd.Close() // the parent keeps no copy, so the child's exit is seen as ErrPeerClosed
	if err != nil {
		panic(err)
	}
	defer cmd.Wait()

	if err := parent.Send(ctx, &ExamplePlan{Hostname: "box"}); err != nil {
		fmt.Println("send plan:", err)
		return
	}
	if _, _, err := syncpipe.Receive[ExampleReady](ctx, parent); err != nil {
		fmt.Println("child:", err) // a *StepError, ErrPeerClosed, or the deadline
	}
}
