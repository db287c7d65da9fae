package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/libjail/libjail"
)

func cmdPause(g *globals, args []string) error {
	fs := flags("pause")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	return withContainer(g, fs.Arg(0), (*libjail.Container).Pause)
}

func cmdResume(g *globals, args []string) error {
	fs := flags("resume")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	return withContainer(g, fs.Arg(0), (*libjail.Container).Resume)
}

func cmdPs(g *globals, args []string) error {
	fs := flags("ps")
	format := fs.String("format", "table", "table or json")
	alias(fs, "f", "format")
	if err := parse(fs, args, 1, -1); err != nil {
		return err
	}
	var pids []int
	err := withContainer(g, fs.Arg(0), func(c *libjail.Container) (err error) {
		pids, err = c.Pids()
		return err
	})
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		if pids == nil {
			pids = []int{}
		}
		b, err := json.Marshal(pids)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	case "table":
		psArgs := fs.Args()[1:]
		if len(psArgs) == 0 {
			psArgs = []string{"-ef"}
		}
		return psTable(pids, psArgs)
	default:
		return fmt.Errorf("ps: --format %q: want table or json", *format)
	}
}

// psTable runs the host's ps(1) and keeps its header and the container's rows.
func psTable(pids []int, args []string) error {
	out, err := exec.Command("ps", args...).Output()
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(args, " "), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() {
		return errors.New("ps: no output")
	}
	header := sc.Text()
	col := slices.Index(strings.Fields(header), "PID")
	if col < 0 {
		return errors.New("ps: its output has no PID column")
	}
	fmt.Println(header)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) <= col {
			continue
		}
		if pid, err := strconv.Atoi(f[col]); err == nil && slices.Contains(pids, pid) {
			fmt.Println(sc.Text())
		}
	}
	return sc.Err()
}

func cmdUpdate(g *globals, args []string) error {
	fs := flags("update")
	resources := fs.String("resources", "", "JSON file of linux.resources, or - for stdin")
	alias(fs, "r", "resources")
	type numFlag struct {
		name  string
		set   func(r *specs.LinuxResources, v int64)
		bytes bool // accepts k/m/g suffixes
	}
	nums := []numFlag{
		{"memory", func(r *specs.LinuxResources, v int64) { mem(r).Limit = &v }, true},
		{"memory-reservation", func(r *specs.LinuxResources, v int64) { mem(r).Reservation = &v }, true},
		{"memory-swap", func(r *specs.LinuxResources, v int64) { mem(r).Swap = &v }, true},
		{"pids-limit", func(r *specs.LinuxResources, v int64) { r.Pids = &specs.LinuxPids{Limit: &v} }, false},
		{"cpu-quota", func(r *specs.LinuxResources, v int64) { cpu(r).Quota = &v }, false},
		{"cpu-period", func(r *specs.LinuxResources, v int64) { u := uint64(v); cpu(r).Period = &u }, false},
		{"cpu-share", func(r *specs.LinuxResources, v int64) { u := uint64(v); cpu(r).Shares = &u }, false},
		{"cpu-rt-runtime", func(r *specs.LinuxResources, v int64) { cpu(r).RealtimeRuntime = &v }, false},
		{"cpu-rt-period", func(r *specs.LinuxResources, v int64) { u := uint64(v); cpu(r).RealtimePeriod = &u }, false},
		{"blkio-weight", func(r *specs.LinuxResources, v int64) {
			w := uint16(v)
			r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
		}, false},
	}
	for _, n := range nums {
		fs.String(n.name, "", "see runc update")
	}
	fs.String("cpuset-cpus", "", "CPUs to use")
	fs.String("cpuset-mems", "", "memory nodes to use")
	if err := parse(fs, args, 1, 1); err != nil {
		return err
	}
	var res specs.LinuxResources
	if *resources != "" {
		// As with runc, a resources file makes the other options ignored.
		var b []byte
		var err error
		if *resources == "-" {
			b, err = readAll(os.Stdin)
		} else {
			b, err = os.ReadFile(*resources)
		}
		if err != nil {
			return fmt.Errorf("--resources: %w", err)
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("--resources: %w", err)
		}
	} else {
		var ferr error
		fs.Visit(func(f *flag.Flag) {
			if ferr != nil {
				return
			}
			switch f.Name {
			case "cpuset-cpus":
				cpu(&res).Cpus = f.Value.String()
				return
			case "cpuset-mems":
				cpu(&res).Mems = f.Value.String()
				return
			}
			for _, n := range nums {
				if n.name != f.Name {
					continue
				}
				v, err := parseNum(f.Value.String(), n.bytes)
				if err != nil {
					ferr = fmt.Errorf("--%s: %w", n.name, err)
					return
				}
				n.set(&res, v)
			}
		})
		if ferr != nil {
			return ferr
		}
	}
	return withContainer(g, fs.Arg(0), func(c *libjail.Container) error { return c.Update(&res) })
}

func mem(r *specs.LinuxResources) *specs.LinuxMemory {
	if r.Memory == nil {
		r.Memory = &specs.LinuxMemory{}
	}
	return r.Memory
}

func cpu(r *specs.LinuxResources) *specs.LinuxCPU {
	if r.CPU == nil {
		r.CPU = &specs.LinuxCPU{}
	}
	return r.CPU
}

// parseNum reads an integer; with bytes, a k, m, g or t suffix (any case, optional b) multiplies
// by powers of 1024. -1 means unlimited.
func parseNum(s string, bytes bool) (int64, error) {
	mult := int64(1)
	if bytes {
		t := strings.TrimSuffix(strings.ToLower(s), "b")
		if t != "" {
			switch t[len(t)-1] {
			case 'k':
				mult = 1 << 10
			case 'm':
				mult = 1 << 20
			case 'g':
				mult = 1 << 30
			case 't':
				mult = 1 << 40
			}
			if mult > 1 {
				t = t[:len(t)-1]
			}
		}
		s = t
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, err
	}
	if v < 0 && v != -1 {
		return 0, fmt.Errorf("%d: negative", v)
	}
	if v == -1 {
		return -1, nil
	}
	return v * mult, nil
}

func readAll(f *os.File) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(f)
	return buf.Bytes(), err
}

func cmdList(g *globals, args []string) error {
	fs := flags("list")
	format := fs.String("format", "table", "table or json")
	alias(fs, "f", "format")
	quiet := fs.Bool("quiet", false, "print the ids only")
	alias(fs, "q", "quiet")
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	ents, err := os.ReadDir(g.root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	states := []stateJSON{}
	for _, e := range ents {
		if !e.IsDir() || e.Name() == podsDir || e.Name() == seccompCacheDir {
			continue
		}
		c, err := libjail.Load(g.root, e.Name(), libjail.Options{Logger: g.log})
		if err != nil {
			continue // being created or deleted right now
		}
		states = append(states, stateOf(c))
		c.Release()
	}
	switch {
	case *quiet:
		for _, st := range states {
			fmt.Println(st.ID)
		}
		return nil
	case *format == "json":
		b, err := json.Marshal(states)
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	case *format == "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tOWNER")
		for _, st := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", st.ID, st.Pid, st.Status, st.Bundle, "root")
		}
		return w.Flush()
	default:
		return fmt.Errorf("list: --format %q: want table or json", *format)
	}
}
