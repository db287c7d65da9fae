package cgroups

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// Stats are a cgroup's counters, read from whichever hierarchy holds each controller. Zero means
// the counter is not available on this layout.
type Stats struct {
	CPU     CPUStats                `json:"cpu"`
	Memory  MemoryStats             `json:"memory"`
	Pids    PidsStats               `json:"pids"`
	IO      []IODeviceStats         `json:"io,omitempty"`
	Hugetlb map[string]HugetlbStats `json:"hugetlb,omitempty"`
}

// CPUStats are times in nanoseconds and CFS bandwidth counters.
type CPUStats struct {
	UsageNS          uint64 `json:"usageNS"`
	UserNS           uint64 `json:"userNS"`
	SystemNS         uint64 `json:"systemNS"`
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttledPeriods"`
	ThrottledNS      uint64 `json:"throttledNS"`
}

// MemoryStats are in bytes except the event counts. A limit of ^uint64(0) means unlimited on v2;
// v1 reports its own large sentinel.
type MemoryStats struct {
	Usage     uint64 `json:"usage"`
	MaxUsage  uint64 `json:"maxUsage"`
	Limit     uint64 `json:"limit"`
	SwapUsage uint64 `json:"swapUsage"`
	SwapLimit uint64 `json:"swapLimit"`
	// OOMEvents counts times the cgroup hit its limit and the OOM path ran (v2 memory.events oom;
	// v1 memory.failcnt counts limit hits instead and is reported here).
	OOMEvents uint64 `json:"oomEvents"`
	// OOMKills counts processes the OOM killer killed in the cgroup.
	OOMKills uint64            `json:"oomKills"`
	Stat     map[string]uint64 `json:"stat,omitempty"`
}

// PidsStats count tasks.
type PidsStats struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit"`
}

// IODeviceStats are per-device totals.
type IODeviceStats struct {
	Major      uint64 `json:"major"`
	Minor      uint64 `json:"minor"`
	ReadBytes  uint64 `json:"readBytes"`
	WriteBytes uint64 `json:"writeBytes"`
	ReadIOs    uint64 `json:"readIOs"`
	WriteIOs   uint64 `json:"writeIOs"`
}

// HugetlbStats are per page size, in bytes.
type HugetlbStats struct {
	Usage   uint64 `json:"usage"`
	Max     uint64 `json:"max"`
	Failcnt uint64 `json:"failcnt"`
}

// userHZ is the unit of cpuacct.stat.
const userHZ = 100

func (m *fsManager) Stats() (*Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &Stats{}
	var errs []error
	// Missing files (a controller absent on this layout or kernel) leave zeros; other errors count.
	keep := func(err error) {
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	keep(m.cpuStats(&s.CPU))
	keep(m.memoryStats(&s.Memory))
	if d := m.dirFor("pids"); d != "" {
		s.Pids.Current, _ = readUint(d, "pids.current")
		s.Pids.Limit, _ = readUint(d, "pids.max")
	}
	keep(m.ioStats(s))
	m.hugetlbStats(s)
	if err := errors.Join(errs...); err != nil {
		return s, &FieldError{Field: "stats", Err: err}
	}
	return s, nil
}

// dirFor is the directory holding controller c: its v1 hierarchy, else the cgroup2 directory when
// the unified hierarchy has it.
func (m *fsManager) dirFor(c string) string {
	if d := m.controllerDir(c); d != "" {
		return d
	}
	for _, h := range m.plan.Hierarchies {
		if h.Unified && h.has(c) {
			return m.v2
		}
	}
	return ""
}

func (m *fsManager) cpuStats(c *CPUStats) error {
	if d := m.controllerDir("cpuacct"); d != "" {
		var err error
		if c.UsageNS, err = readUint(d, "cpuacct.usage"); err != nil {
			return err
		}
		st, err := readKV(d, "cpuacct.stat")
		if err != nil {
			return err
		}
		c.UserNS = st["user"] * 1e9 / userHZ
		c.SystemNS = st["system"] * 1e9 / userHZ
		if d := m.controllerDir("cpu"); d != "" {
			st, err := readKV(d, "cpu.stat")
			if err != nil {
				return err
			}
			c.Periods, c.ThrottledPeriods, c.ThrottledNS = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
		}
		return nil
	}
	if m.v2 == "" {
		return nil
	}
	// cpu.stat's usage lines are core in cgroup2, present even without the cpu controller.
	st, err := readKV(m.v2, "cpu.stat")
	if err != nil {
		return err
	}
	c.UsageNS, c.UserNS, c.SystemNS = st["usage_usec"]*1000, st["user_usec"]*1000, st["system_usec"]*1000
	c.Periods, c.ThrottledPeriods, c.ThrottledNS = st["nr_periods"], st["nr_throttled"], st["throttled_usec"]*1000
	return nil
}

func (m *fsManager) memoryStats(s *MemoryStats) error {
	if d := m.controllerDir("memory"); d != "" {
		var err error
		if s.Usage, err = readUint(d, "memory.usage_in_bytes"); err != nil {
			return err
		}
		s.MaxUsage, _ = readUint(d, "memory.max_usage_in_bytes")
		s.Limit, _ = readUint(d, "memory.limit_in_bytes")
		if memsw, err := readUint(d, "memory.memsw.usage_in_bytes"); err == nil && memsw >= s.Usage {
			s.SwapUsage = memsw - s.Usage
		}
		s.SwapLimit, _ = readUint(d, "memory.memsw.limit_in_bytes")
		s.OOMEvents, _ = readUint(d, "memory.failcnt")
		oc, err := readKV(d, "memory.oom_control")
		if err != nil {
			return err
		}
		s.OOMKills = oc["oom_kill"]
		s.Stat, err = readKV(d, "memory.stat")
		return err
	}
	if m.v2 == "" || m.dirFor("memory") == "" {
		return nil
	}
	d := m.v2
	var err error
	if s.Usage, err = readUint(d, "memory.current"); err != nil {
		return err
	}
	s.MaxUsage, _ = readUint(d, "memory.peak")
	s.Limit, _ = readUint(d, "memory.max")
	s.SwapUsage, _ = readUint(d, "memory.swap.current")
	s.SwapLimit, _ = readUint(d, "memory.swap.max")
	ev, err := readKV(d, "memory.events")
	if err != nil {
		return err
	}
	s.OOMEvents, s.OOMKills = ev["oom"], ev["oom_kill"]
	s.Stat, err = readKV(d, "memory.stat")
	return err
}

func (m *fsManager) ioStats(s *Stats) error {
	devs := map[[2]uint64]*IODeviceStats{}
	var order [][2]uint64
	get := func(majmin string) *IODeviceStats {
		a, b, _ := strings.Cut(majmin, ":")
		ma, _ := strconv.ParseUint(a, 10, 64)
		mi, _ := strconv.ParseUint(b, 10, 64)
		k := [2]uint64{ma, mi}
		if devs[k] == nil {
			devs[k] = &IODeviceStats{Major: ma, Minor: mi}
			order = append(order, k)
		}
		return devs[k]
	}
	if d := m.controllerDir("blkio"); d != "" {
		for _, f := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"} {
			txt, err := readFile(d, f)
			if err != nil {
				return err
			}
			bytes := strings.Contains(f, "bytes")
			for _, line := range strings.Split(txt, "\n") {
				fs := strings.Fields(line)
				if len(fs) != 3 {
					continue
				}
				n, _ := strconv.ParseUint(fs[2], 10, 64)
				ds := get(fs[0])
				switch {
				case fs[1] == "Read" && bytes:
					ds.ReadBytes = n
				case fs[1] == "Write" && bytes:
					ds.WriteBytes = n
				case fs[1] == "Read":
					ds.ReadIOs = n
				case fs[1] == "Write":
					ds.WriteIOs = n
				}
			}
		}
	} else if d := m.dirFor("io"); d != "" {
		txt, err := readFile(d, "io.stat")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(txt, "\n") {
			fs := strings.Fields(line)
			if len(fs) < 2 {
				continue
			}
			ds := get(fs[0])
			for _, kv := range fs[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseUint(v, 10, 64)
				switch k {
				case "rbytes":
					ds.ReadBytes = n
				case "wbytes":
					ds.WriteBytes = n
				case "rios":
					ds.ReadIOs = n
				case "wios":
					ds.WriteIOs = n
				}
			}
		}
	}
	for _, k := range order {
		s.IO = append(s.IO, *devs[k])
	}
	return nil
}

func (m *fsManager) hugetlbStats(s *Stats) {
	d := m.dirFor("hugetlb")
	if d == "" {
		return
	}
	v1 := m.controllerDir("hugetlb") != ""
	for _, ps := range pagesizes() {
		var h HugetlbStats
		var err error
		if v1 {
			h.Usage, err = readUint(d, "hugetlb."+ps+".usage_in_bytes")
			h.Max, _ = readUint(d, "hugetlb."+ps+".limit_in_bytes")
			h.Failcnt, _ = readUint(d, "hugetlb."+ps+".failcnt")
		} else {
			h.Usage, err = readUint(d, "hugetlb."+ps+".current")
			h.Max, _ = readUint(d, "hugetlb."+ps+".max")
			ev, _ := readKV(d, "hugetlb."+ps+".events")
			h.Failcnt = ev["max"]
		}
		if err != nil {
			continue
		}
		if s.Hugetlb == nil {
			s.Hugetlb = map[string]HugetlbStats{}
		}
		s.Hugetlb[ps] = h
	}
}
