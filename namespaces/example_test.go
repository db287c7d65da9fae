package namespaces_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/namespaces"
)

// A container with its own pid, mount, uts and ipc namespaces that joins a pod's network namespace.
func ExamplePlan() {
	plan, err := namespaces.Plan(&specs.Spec{
		Hostname: "web",
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UTSNamespace},
			{Type: specs.IPCNamespace}, {Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"},
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(plan)
	fmt.Println(plan.Creates(namespaces.PID), plan.Creates(namespaces.Network))
	// Output:
	// mount=new pid=new network=/proc/self/ns/net ipc=new uts=new
	// true false
}

// Errors name the spec field.
func ExamplePlan_error() {
	_, err := namespaces.Plan(&specs.Spec{Linux: &specs.Linux{
		Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
	}})
	fmt.Println(err)
	// Output:
	// linux.uidMappings: id mappings without a new user namespace
}

// Starting a child: Configure, Start, release. The child (the same executable) calls
// nsenter.Result() first thing (through libjail.Init).
func ExampleNSPlan_Start() {
	plan, err := namespaces.Plan(&specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
	}}})
	if err != nil {
		panic(err)
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = append(os.Environ(), "_LIBJAIL_INIT=3")
	release, err := plan.Configure(cmd)
	if err != nil {
		panic(err)
	}
	err = plan.Start(cmd)
	release()
	if err != nil {
		panic(err)
	}
	cmd.Wait()
}

// Exec into a running container: join every namespace its init is in.
func ExampleForExec() {
	initPID := 4242 // the container's init, as seen from the agent
	plan, err := namespaces.ForExec(initPID)
	if err != nil {
		panic(err)
	}
	cmd := exec.Command("/proc/self/exe")
	release, err := plan.Configure(cmd)
	if err != nil {
		panic(err)
	}
	defer release()
	if err := plan.Start(cmd); err != nil {
		panic(err)
	}
}

// A pod: a user namespace and a network namespace owned by it, pinned under a directory of the
// agent's; containers join both by path; Release when the pod is destroyed.
func ExamplePin() {
	idmap := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	pod, err := namespaces.Pin("/run/agent/pods/p1/ns", []namespaces.Type{namespaces.User, namespaces.Network},
		namespaces.PinOptions{UIDMappings: idmap, GIDMappings: idmap})
	if err != nil {
		panic(err)
	}
	defer pod.Release()
	spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.UserNamespace, Path: pod.Path(namespaces.User)},
		{Type: specs.NetworkNamespace, Path: pod.Path(namespaces.Network)},
		{Type: specs.MountNamespace}, {Type: specs.PIDNamespace},
	}}}
	_ = spec
}

// Given only a pod's network namespace, find the user namespace to join with it.
func ExampleOwningUserNS() {
	userns, err := namespaces.OwningUserNS("/run/netns/pod1")
	if err != nil {
		panic(err)
	}
	defer userns.Close()
	fmt.Println(userns.Name())
}

// A cgroup namespace made by the child after the parent placed it in its cgroup (cgroup v1).
func ExampleUnshareCgroup() {
	// In the parent: plan.DeferCgroup = true before Configure.
	// In the child, after the parent reported the cgroup placement, on the thread that will execve:
	runtime.LockOSThread()
	if err := namespaces.UnshareCgroup(); err != nil {
		panic(err)
	}
}
