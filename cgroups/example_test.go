package cgroups_test

import (
	"errors"
	"fmt"
	"log"
	"os/exec"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail/cgroups"
)

func i64(v int64) *int64 { return &v }

// Plans are pure: this one targets the conventional v2 mount and prints its writes.
func ExamplePlan() {
	plan, err := cgroups.Plan("ctr1", &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20)},
		Pids:   &specs.LinuxPids{Limit: i64(64)},
	}, cgroups.V2, cgroups.Options{Parent: "/libjail/pod1"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan)
	// Output:
	// cgroup /libjail/pod1/ctr1 (v2)
	//   dir unified = /sys/fs/cgroup/libjail/pod1/ctr1
	//   unified/memory.max = 268435456
	//   unified/memory.swap.max = 268435456
	//   unified/pids.max = 64
}

// A field no mounted controller can honour is an error naming it.
func ExamplePlan_notSupported() {
	_, err := cgroups.Plan("/c", &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Swappiness: new(uint64)},
	}, cgroups.V2, cgroups.Options{})
	var fe *cgroups.FieldError
	fmt.Println(errors.As(err, &fe), fe.Field, errors.Is(err, cgroups.ErrNotSupported))
	// Output: true linux.resources.memory.swappiness true
}

// A pod cgroup, then a container inside it whose first process is born in its cgroup. Needs root.
func ExampleNew() {
	hs, err := cgroups.DetectHierarchies()
	if err != nil {
		log.Fatal(err)
	}
	layout := cgroups.LayoutOf(hs)
	// Pod: the pod's cgroup delegates its controllers to its containers' cgroups.
	podPlan, err := cgroups.Plan("/libjail/pod1", nil, layout, cgroups.Options{Hierarchies: hs, Pod: true})
	if err != nil {
		log.Fatal(err)
	}
	pod, _ := cgroups.New(podPlan)
	if err := pod.Create(); err != nil {
		log.Fatal(err)
	}
	defer pod.Destroy()

	ctrPlan, err := podPlan.PlanChild("ctr1", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(16)}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctr, _ := cgroups.New(ctrPlan)
	if err := ctr.Create(); err != nil {
		log.Fatal(err)
	}
	cmd := exec.Command("/bin/true")
	if fd, err := ctr.CgroupFD(); err == nil {
		defer fd.Close()
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	// On v1 and hybrid the v1 hierarchies still need the pid.
	if err := ctr.Place(cmd.Process.Pid); err != nil && !errors.Is(err, syscall.ESRCH) {
		log.Print(err)
	}
	cmd.Wait()
}

// OOM events arrive on a channel until stopped or the cgroup is removed. Needs root.
func ExampleManager_oomEvents() {
	plan, err := cgroups.Plan("/libjail/ctr1", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}},
		cgroups.Hybrid, cgroups.Options{})
	if err != nil {
		log.Fatal(err)
	}
	m, _ := cgroups.New(plan)
	if err := m.Create(); err != nil {
		log.Fatal(err)
	}
	defer m.Destroy()
	events, stop, err := m.OOMEvents()
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	go func() {
		for ev := range events {
			log.Printf("container hit its memory limit %d time(s)", ev.Count)
		}
	}()
}

// Detect reads /proc/self/mountinfo.
func ExampleDetect() {
	layout, err := cgroups.Detect()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(layout)
}
