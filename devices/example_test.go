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
