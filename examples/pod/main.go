// pod runs two containers in one pod: they share the pod's network, ipc and uts namespaces and its
// parent cgroup, whose device rules are restricted before either container exists. It prints what
// each container sees and the pod's device rules.
//
//	pod --rootfs DIR
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/libjail/libjail"
	"github.com/libjail/libjail/devices"
	"github.com/libjail/libjail/internal/fixtures"
)

func main() {
	libjail.Init()
	rootfs := flag.String("rootfs", "", "a root filesystem with busybox (make demo builds one)")
	id := flag.String("id", "libjail-pod-example", "pod id")
	flag.Parse()
	if err := run(*rootfs, *id); err != nil {
		fmt.Fprintln(os.Stderr, "pod:", err)
		os.Exit(1)
	}
}

func run(rootfs, id string) error {
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return err
	}
	pod, err := libjail.NewPod(id, libjail.PodOptions{CgroupPath: "/" + id, Hostname: "pod-example"})
	if err != nil {
		return err
	}
	defer pod.Destroy()
	fmt.Printf("pod %s: cgroup %s\n", id, pod.CgroupPath())
	printRules(pod)

	for _, name := range []string{"web", "sidecar"} {
		spec := fixtures.Spec(abs, "/bin/sh", "-c",
			`echo "$(hostname) net=$(readlink /proc/self/ns/net) ipc=$(readlink /proc/self/ns/ipc) pid=$(readlink /proc/self/ns/pid)"; `+
				`cat /dev/null && echo "  /dev/null opens"; head -c1 /dev/loop0 >/dev/null 2>&1 || echo "  /dev/loop0 is denied"`)
		spec.Hostname = "" // the uts namespace is the pod's
		var out bytes.Buffer
		c, err := pod.NewContainer(name, spec, libjail.Options{Stdout: &out, Stderr: os.Stderr})
		if err != nil {
			return err
		}
		if err := c.Start(context.Background()); err != nil {
			return err
		}
		if _, err := c.Wait(); err != nil {
			return err
		}
		fmt.Printf("%-8s %s", name+":", out.String())
		if err := c.Destroy(false); err != nil {
			return err
		}
	}
	return nil
}

// printRules shows the pod cgroup's device restriction: the v1 list, or the v2 programs.
func printRules(pod *libjail.Pod) {
	v1 := filepath.Join("/sys/fs/cgroup/devices", pod.CgroupPath(), "devices.list")
	if b, err := os.ReadFile(v1); err == nil {
		fmt.Printf("pod device rules (cgroup v1 %s):\n%s", v1, b)
		return
	}
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if ids, err := devices.AttachedPrograms(filepath.Join(root, pod.CgroupPath())); err == nil {
			fmt.Printf("pod device rules: cgroup v2 programs %v on %s\n", ids, filepath.Join(root, pod.CgroupPath()))
			return
		}
	}
}
