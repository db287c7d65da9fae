package devices_test

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/devices"
)

func ExamplePlanNodes() {
	nodes, err := devices.PlanNodes([]specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}, true)
	if err != nil {
		panic(err)
	}
	for _, n := range nodes[:3] {
		fmt.Println(n)
	}
	// Output:
	// c 10:229 /dev/fuse 0666 0:0
	// c 1:3 /dev/null 0666 0:0
	// c 1:5 /dev/zero 0666 0:0
}

func ExampleCreateNodes() {
	nodes, err := devices.PlanNodes(nil, true)
	if err != nil {
		panic(err)
	}
	// In the container's child, before pivot_root (needs CAP_MKNOD).
	if err := devices.CreateNodes("/run/container/rootfs", nodes, false); err != nil {
		panic(err)
	}
}

func ExamplePlanRules() {
	major, minor := int64(1), int64(3)
	rules, err := devices.PlanRules([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rw"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(rules)
	// Output: [deny a *:* rwm allow c 1:3 rw]
}

func ExampleV1Transition() {
	current := devices.PodDefaultRules()
	target := append(devices.PodDefaultRules(), devices.Rule{Type: 'c', Major: 10, Minor: 200, Access: "rw", Allow: true})
	for _, w := range devices.V1Transition(current, target) {
		fmt.Println(w)
	}
	// Output: devices.allow < c 10:200 rw
}

func ExampleProgram() {
	insns, err := devices.Program([]devices.Rule{devices.DenyAll(), {Type: 'c', Major: 1, Minor: 3, Access: "rwm", Allow: true}})
	if err != nil {
		panic(err)
	}
	fmt.Println(len(insns), "instructions")
	// Output: 11 instructions
}

func ExampleApplyV1() {
	if err := devices.ApplyV1("/sys/fs/cgroup/devices/mypod", devices.PodDefaultRules()); err != nil {
		panic(err)
	}
}

func ExampleAttachV2() {
	v, err := devices.AttachV2("/sys/fs/cgroup/mypod/ctr", devices.PodDefaultRules())
	if err != nil {
		panic(err)
	}
	defer v.Close() // detaches
	// Hot-plug: one atomic swap of the program.
	_ = v.Replace(append(devices.PodDefaultRules(), devices.Rule{Type: 'c', Major: 10, Minor: 200, Access: "rw", Allow: true}))
}

func ExampleNewPod() {
	pod, err := devices.NewPod("/sys/fs/cgroup/mypod", true)
	if err != nil {
		panic(err)
	}
	defer pod.Close()
	ctr, err := pod.AddContainer("/sys/fs/cgroup/mypod/ctr", devices.PodDefaultRules())
	if err != nil {
		panic(err)
	}
	defer ctr.Close()
}
