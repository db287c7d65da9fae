package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/libjail/libjail/internal/bench"
)

// childSteps names the child's messages in the order init.go sends them (one progress message
// per step, the ready message before its own progress, the exec message last). A child that sends
// a different number gets its extra messages numbered.
var childSteps = []string{
	"join namespaces (exec → Go runtime → first message)", "receive plan", "cgroup namespace",
	"prepare root", "mount", "device nodes", "createRuntime hooks", "createContainer hooks",
	"enter root", "cwd", "finish root", "hostname", "rlimits", "seccomp", "user", "capabilities",
	"no_new_privs", "seccomp (when no_new_privs)", "ready message", "ready", "wait for start", "startContainer hooks", "exec message",
}

// perfLine is `perf script -F comm,tid,time,event,trace`: "comm tid secs: event: args".
var perfLine = regexp.MustCompile(`^\s*(\S+)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$`)

type childTrace struct {
	fork, exec, trueExec, exit float64
	sends                      []float64
}

// timeline reads perf tracepoints of a lifecycle benchmark (see profile.sh) and prints the median
// time of each of the child's steps: the gap before each message it sends to the parent.
func timeline(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	kids := map[int]*childTrace{}
	forks := map[int]float64{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := perfLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		tid, _ := strconv.Atoi(m[2])
		t, _ := strconv.ParseFloat(m[3], 64)
		ev, args := m[4], m[5]
		switch {
		case ev == "sched:sched_process_fork":
			if i := strings.Index(args, "child_pid="); i >= 0 {
				pid, _ := strconv.Atoi(strings.Fields(args[i+len("child_pid="):])[0])
				forks[pid] = t
			}
		case ev == "sched:sched_process_exec" && strings.Contains(args, "filename=/proc/self/fd/"):
			kids[tid] = &childTrace{fork: forks[tid], exec: t}
		case kids[tid] != nil:
			k := kids[tid]
			switch {
			case ev == "syscalls:sys_enter_sendmsg" && k.trueExec == 0:
				k.sends = append(k.sends, t)
			case ev == "sched:sched_process_exec":
				k.trueExec = t
			case ev == "syscalls:sys_enter_exit_group" && k.trueExec != 0:
				k.exit = t
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	rows := map[string][]time.Duration{}
	var order []string
	add := func(name string, secs float64) {
		if _, ok := rows[name]; !ok {
			order = append(order, name)
		}
		rows[name] = append(rows[name], time.Duration(secs*float64(time.Second)))
	}
	n := 0
	for _, k := range sortedKids(kids) {
		if k.fork == 0 || k.exit == 0 {
			continue
		}
		n++
		add("fork → exec of the sealed executable", k.exec-k.fork)
		prev := k.exec
		for i, t := range k.sends {
			name := fmt.Sprintf("message %d", i+1)
			if i < len(childSteps) {
				name = childSteps[i]
			}
			add(name, t-prev)
			prev = t
		}
		add("last message → exec of the container process", k.trueExec-prev)
		add("container process (exec to exit)", k.exit-k.trueExec)
		add("TOTAL fork → container process exit", k.exit-k.fork)
	}
	fmt.Printf("child timeline over %d containers (perf tracepoints; medians, with perf's overhead):\n", n)
	for _, name := range order {
		s := bench.Summarise(rows[name])
		fmt.Printf("  %-55s p50 %7.3f ms  mean %7.3f ms\n", name, s.P50MS, s.MeanMS)
	}
	return nil
}

func sortedKids(m map[int]*childTrace) []*childTrace {
	out := make([]*childTrace, 0, len(m))
	for _, k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].exec < out[j].exec })
	return out
}
