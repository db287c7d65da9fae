package libjail_test

import (
	"context"
	"fmt"
	"os"

	"github.com/libjail/libjail"
	"github.com/libjail/libjail/internal/fixtures"
)

// A container from a spec: plan, start, wait, destroy. Needs root, so there is no Output.
func ExampleNew() {
	spec := fixtures.Spec("/path/to/rootfs", "/bin/sh", "-c", "echo hello")
	c, err := libjail.New("example", spec, libjail.Options{Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Println("invalid spec:", err) // names the field, e.g. process.cwd
		return
	}
	defer c.Destroy(true)
	if err := c.Start(context.Background()); err != nil {
		fmt.Println("start:", err) // a *libjail.StepError naming the step
		return
	}
	st, _ := c.Wait()
	fmt.Println("exit status", st.ExitCode())
}

// A pod: two containers sharing the pod's network, ipc and uts namespaces and its cgroup, whose
// device rules are restricted before either container exists.
func ExampleNewPod() {
	pod, err := libjail.NewPod("example-pod", libjail.PodOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pod.Destroy()
	for _, id := range []string{"web", "sidecar"} {
		c, err := pod.NewContainer(id, fixtures.Spec("/path/to/rootfs", "/bin/sleep", "60"), libjail.Options{})
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := c.Start(context.Background()); err != nil {
			fmt.Println(err)
			return
		}
	}
}
