package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/libjail/libjail"
	"github.com/libjail/libjail/internal/bench"
)

// memSample is this process's memory and process counts at one moment.
type memSample struct {
	RSSKiB      int    `json:"rss_kib"`
	RSSAnonKiB  int    `json:"rss_anon_kib"`
	Threads     int    `json:"threads"`
	Goroutines  int    `json:"goroutines"`
	HeapAlloc   uint64 `json:"go_heap_alloc_bytes"`
	GoSys       uint64 `json:"go_sys_bytes"`
	Descendants int    `json:"descendants"` // processes below this one
	Processes   int    `json:"processes"`   // on the whole machine
}

// memResult is memory.json.
type memResult struct {
	Containers      int       `json:"containers"`
	Before          memSample `json:"before"`
	After           memSample `json:"after"`
	RSSPerCtrKiB    float64   `json:"rss_per_container_kib"`
	HeapPerCtrBytes float64   `json:"go_heap_per_container_bytes"`
	ThreadsPerCtr   float64   `json:"threads_per_container"`
	// Helpers are processes below the agent that are neither a container's init nor inside one:
	// a shim or monitor per container would show here. Zero is the design.
	Helpers      int     `json:"helper_processes"`
	StartAllMS   float64 `json:"start_all_ms"`
	DestroyAllMS float64 `json:"destroy_all_ms"`
	Note         string  `json:"note"`
}

// benchMemory starts n sleeping containers in this process and measures its growth.
func benchMemory(dir string, n int) (err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	bundle := filepath.Join(dir, "bundle-sleep")
	spec, err := bench.LoadSpec(bundle)
	if err != nil {
		return err
	}
	ctx := context.Background()
	prefix := fmt.Sprintf("%smem-%d-", bench.Prefix, os.Getpid())
	newCtr := func(i int) (*libjail.Container, error) {
		s := *spec
		l := *spec.Linux
		l.CgroupsPath = "/" + prefix + strconv.Itoa(i)
		s.Linux = &l
		return libjail.New(prefix+strconv.Itoa(i), &s, libjail.Options{Bundle: bundle})
	}
	var (
		mu   sync.Mutex
		ctrs []*libjail.Container
	)
	defer onExit(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range ctrs {
			if derr := c.Destroy(true); derr != nil {
				err = errors.Join(err, derr)
			}
		}
		ctrs = nil
		_ = cleanupCgroups()
	})()

	// Warm up: the once-per-process work (sealed executable, seccomp compile) is not per container.
	c, err := newCtr(-1)
	if err != nil {
		return err
	}
	if err := c.Start(ctx); err != nil {
		return err
	}
	if err := c.Destroy(true); err != nil {
		return err
	}
	before, err := sample()
	if err != nil {
		return err
	}
	t := time.Now()
	for i := range n {
		c, err := newCtr(i)
		if err != nil {
			return err
		}
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("container %d: %w", i, err)
		}
		mu.Lock()
		ctrs = append(ctrs, c)
		mu.Unlock()
	}
	startAll := time.Since(t)
	time.Sleep(200 * time.Millisecond) // let every init reach its sleep
	after, err := sample()
	if err != nil {
		return err
	}
	inits := map[int]bool{}
	mu.Lock()
	live := append([]*libjail.Container(nil), ctrs...)
	mu.Unlock()
	for _, c := range live {
		inits[c.Pid()] = true
	}
	helpers, err := helperProcesses(inits)
	if err != nil {
		return err
	}
	t = time.Now()
	mu.Lock()
	for _, c := range ctrs {
		if err := c.Destroy(true); err != nil {
			mu.Unlock()
			return err
		}
	}
	ctrs = nil
	mu.Unlock()
	destroyAll := time.Since(t)

	res := memResult{
		Containers: n, Before: before, After: after, Helpers: len(helpers),
		RSSPerCtrKiB:    float64(after.RSSKiB-before.RSSKiB) / float64(n),
		HeapPerCtrBytes: (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n),
		ThreadsPerCtr:   float64(after.Threads-before.Threads) / float64(n),
		StartAllMS:      float64(startAll.Microseconds()) / 1000,
		DestroyAllMS:    float64(destroyAll.Microseconds()) / 1000,
		Note: "RSS of the agent process (VmRSS, after runtime.GC) with n containers running /bin/sleep, " +
			"minus the same after one warm-up container; helpers: processes below the agent other than the containers' own",
	}
	if len(helpers) > 0 {
		res.Note += fmt.Sprintf("; helper pids: %v", helpers)
	}
	return writeJSON(dir, "memory.json", res)
}

func sample() (memSample, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSample{Goroutines: runtime.NumGoroutine(), HeapAlloc: ms.HeapAlloc, GoSys: ms.Sys}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		num, _ := strconv.Atoi(strings.Fields(v + " 0")[0])
		switch k {
		case "VmRSS":
			s.RSSKiB = num
		case "RssAnon":
			s.RSSAnonKiB = num
		case "Threads":
			s.Threads = num
		}
	}
	ppids, err := parents()
	if err != nil {
		return s, err
	}
	s.Processes = len(ppids)
	s.Descendants = len(descendants(ppids, os.Getpid()))
	return s, sc.Err()
}

// parents maps every process on the machine to its parent.
func parents() (map[int]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	m := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		// The command name may hold spaces and parentheses: fields start after the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		m[pid] = ppid
	}
	return m, nil
}

func descendants(ppids map[int]int, root int) []int {
	var out []int
	for pid := range ppids {
		for p := ppids[pid]; p > 1; p = ppids[p] {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// helperProcesses lists the processes below this one that are neither a container init nor below one.
func helperProcesses(inits map[int]bool) ([]int, error) {
	ppids, err := parents()
	if err != nil {
		return nil, err
	}
	var out []int
outer:
	for _, pid := range descendants(ppids, os.Getpid()) {
		for p := pid; p > 1; p = ppids[p] {
			if inits[p] {
				continue outer
			}
		}
		out = append(out, pid)
	}
	return out, nil
}
