package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/libjail/libjail"
	"github.com/libjail/libjail/namespaces"
)

// A container whose cgroupsPath has a parent other than the root belongs to the pod of that
// parent: the library's persistent pod (its record is root/pods/<pod>.json) owns the pod cgroup
// and the pod-level device rules. This command line adds who is in the pod, one empty file per
// container in root/pods/<pod>.members/, so the last delete destroys the pod. A lock file beside
// it serialises the creates and deletes of one pod across processes.

// podsDir is the directory under the root that holds the pod records.
const podsDir = "pods"

// defaultCgroupParent is the library's parent of a relative cgroupsPath.
const defaultCgroupParent = "/libjail"

// podOf returns the pod id and cgroup path of a spec's container, or ok false when the parent of
// its cgroupsPath is the root (or it has none).
func podOf(spec *specs.Spec) (id, cgroup string, ok bool) {
	if spec == nil || spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return "", "", false
	}
	p := spec.Linux.CgroupsPath
	if !path.IsAbs(p) {
		if dir := path.Dir(path.Clean(p)); dir == "." {
			return "", "", false // directly under the default parent, which is no pod
		}
		p = path.Join(defaultCgroupParent, p)
	}
	parent := path.Dir(path.Clean(p))
	if parent == "/" {
		return "", "", false
	}
	return strings.ReplaceAll(strings.TrimPrefix(parent, "/"), "/", "-"), parent, true
}

func membersDir(root, pod string) string { return filepath.Join(root, podsDir, pod+".members") }

// lockMembers takes the pod's membership lock; the returned func releases it.
func lockMembers(root, pod string) (func(), error) {
	if err := os.MkdirAll(filepath.Join(root, podsDir), 0o711); err != nil {
		return nil, err
	}
	fd, err := unix.Open(membersDir(root, pod)+".lock", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

// members lists the pod's containers.
func members(root, pod string) ([]string, error) {
	ents, err := os.ReadDir(membersDir(root, pod))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var ids []string
	for _, e := range ents {
		ids = append(ids, e.Name())
	}
	return ids, err
}

// newContainer plans and creates a container, in its pod when it has one: the pod is created
// with its first container and loaded for the next ones.
func newContainer(g *globals, id string, spec *specs.Spec, opts libjail.Options) (*libjail.Container, error) {
	podID, cgroup, inPod := podOf(spec)
	if !inPod {
		c, err := libjail.New(id, spec, opts)
		if err == nil {
			err = c.Create(context.Background())
		}
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	unlock, err := lockMembers(g.root, podID)
	if err != nil {
		return nil, fmt.Errorf("pod %q: %w", podID, err)
	}
	defer unlock()
	pod, err := libjail.LoadPod(g.root, podID, libjail.PodOptions{Logger: g.log})
	if errors.Is(err, libjail.ErrNotExist) {
		// Share nothing: the engine's config says which namespaces each container joins.
		pod, err = libjail.NewPod(podID, libjail.PodOptions{
			CgroupPath: cgroup, Share: []namespaces.Type{}, StateDir: g.root, Logger: g.log,
		})
	}
	if err != nil {
		return nil, err
	}
	c, err := pod.NewContainer(id, spec, opts)
	if err == nil {
		err = c.Create(context.Background())
	}
	if err == nil {
		err = os.MkdirAll(membersDir(g.root, podID), 0o711)
		if err == nil {
			err = os.WriteFile(filepath.Join(membersDir(g.root, podID), id), nil, 0o600)
		}
		if err != nil {
			_ = c.Destroy(true)
		}
	}
	if err != nil {
		if ids, lerr := members(g.root, podID); lerr == nil && len(ids) == 0 {
			_ = pod.Destroy()
			os.Remove(membersDir(g.root, podID))
			os.Remove(membersDir(g.root, podID) + ".lock")
		}
		return nil, err
	}
	return c, nil
}

// leavePod drops a destroyed container from its pod, and destroys the pod after its last one.
func leavePod(g *globals, id string) error {
	locks, _ := filepath.Glob(filepath.Join(g.root, podsDir, "*.members.lock"))
	for _, lock := range locks {
		podID := strings.TrimSuffix(filepath.Base(lock), ".members.lock")
		if _, err := os.Stat(filepath.Join(membersDir(g.root, podID), id)); err != nil {
			continue
		}
		unlock, err := lockMembers(g.root, podID)
		if err != nil {
			return fmt.Errorf("pod %q: %w", podID, err)
		}
		defer unlock()
		if err := os.Remove(filepath.Join(membersDir(g.root, podID), id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		ids, err := members(g.root, podID)
		if err != nil || len(ids) > 0 {
			return err
		}
		pod, err := libjail.LoadPod(g.root, podID, libjail.PodOptions{Logger: g.log})
		if err == nil {
			err = pod.Destroy()
		} else if errors.Is(err, libjail.ErrNotExist) {
			err = nil
		}
		if err != nil {
			return fmt.Errorf("pod %q: %w", podID, err)
		}
		os.Remove(membersDir(g.root, podID))
		os.Remove(lock)
		return nil
	}
	return nil
}
