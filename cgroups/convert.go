package cgroups

import (
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// converter turns spec resources into writes, choosing per controller the hierarchy that has it.
type converter struct {
	plan *CgroupPlan
	hs   []Hierarchy
	log  *slog.Logger // nil: no warnings
}

func (c *converter) warn(field, msg string) {
	if c.log != nil {
		c.log.Warn(msg, "field", field, "path", c.plan.Path)
	}
}

// pick finds where a controller lives: a v1 hierarchy carrying v1name first, else the unified
// hierarchy when its controller list has v2name. v1name or v2name "" means the controller does not
// exist in that version.
func (c *converter) pick(field, v1name, v2name string) (key string, unified bool, err error) {
	if v1name != "" {
		for _, h := range c.hs {
			if !h.Unified && h.has(v1name) {
				return h.Key(), false, nil
			}
		}
	}
	if v2name != "" {
		for _, h := range c.hs {
			if h.Unified && h.has(v2name) {
				return h.Key(), true, nil
			}
		}
	}
	var want []string
	if v1name != "" {
		want = append(want, "v1 "+v1name)
	}
	if v2name != "" {
		want = append(want, "v2 "+v2name)
	}
	return "", false, fieldErr(field, ErrNotSupported, "needs the %s controller, not mounted on this %s machine",
		strings.Join(want, " or "), c.plan.Layout)
}

func (c *converter) add(key, file, value, field string) {
	c.plan.Writes = append(c.plan.Writes, Write{Hierarchy: key, File: file, Value: value, Field: field})
}

func (c *converter) addAlt(key, file, value, alt, altValue, field string) {
	c.plan.Writes = append(c.plan.Writes, Write{Hierarchy: key, File: file, Value: value, Field: field, AltFile: alt, AltValue: altValue})
}

func (c *converter) convert(r *specs.LinuxResources) error {
	for _, f := range []func(*specs.LinuxResources) error{
		c.cpu, c.memory, c.pids, c.blockIO, c.hugepages, c.network, c.rdma, c.unified,
	} {
		if err := f(r); err != nil {
			return err
		}
	}
	return nil
}

const res = "linux.resources."

func itoa(v int64) string  { return strconv.FormatInt(v, 10) }
func utoa(v uint64) string { return strconv.FormatUint(v, 10) }

// maxOr renders a limit where -1 means unlimited: "max" on v2, "-1" on v1.
func maxOr(v int64, unified bool) string {
	if v == -1 && unified {
		return "max"
	}
	return itoa(v)
}

func (c *converter) cpu(r *specs.LinuxResources) error {
	cpu := r.CPU
	if cpu == nil {
		return nil
	}
	f := res + "cpu."
	if cpu.Cpus != "" || cpu.Mems != "" {
		key, _, err := c.pick(f+"cpus", "cpuset", "cpuset")
		if err != nil {
			if cpu.Cpus == "" {
				err.(*FieldError).Field = f + "mems"
			}
			return err
		}
		for _, v := range []struct{ name, list string }{{"cpus", cpu.Cpus}, {"mems", cpu.Mems}} {
			if v.list != "" && !cpuListRe.MatchString(v.list) {
				return fieldErr(f+v.name, ErrInvalid, "%q is not a list like 0-3,5", v.list)
			}
		}
		// Same file names on v1 and v2.
		if cpu.Cpus != "" {
			c.add(key, "cpuset.cpus", cpu.Cpus, f+"cpus")
		}
		if cpu.Mems != "" {
			c.add(key, "cpuset.mems", cpu.Mems, f+"mems")
		}
	}
	if cpu.Shares == nil && cpu.Quota == nil && cpu.Period == nil && cpu.Burst == nil &&
		cpu.RealtimeRuntime == nil && cpu.RealtimePeriod == nil && cpu.Idle == nil {
		return nil
	}
	field := f + "shares"
	switch {
	case cpu.Shares != nil:
	case cpu.Quota != nil:
		field = f + "quota"
	case cpu.Period != nil:
		field = f + "period"
	case cpu.Burst != nil:
		field = f + "burst"
	case cpu.Idle != nil:
		field = f + "idle"
	default:
		field = f + "realtimeRuntime"
	}
	key, unified, err := c.pick(field, "cpu", "cpu")
	if err != nil {
		return err
	}
	if cpu.Quota != nil && *cpu.Quota != -1 && *cpu.Quota <= 0 {
		return fieldErr(f+"quota", ErrInvalid, "%d: must be -1 (unlimited) or positive", *cpu.Quota)
	}
	if cpu.Idle != nil && *cpu.Idle != 0 && *cpu.Idle != 1 {
		return fieldErr(f+"idle", ErrInvalid, "%d: must be 0 or 1", *cpu.Idle)
	}
	if !unified {
		if cpu.Shares != nil && *cpu.Shares != 0 {
			c.add(key, "cpu.shares", utoa(*cpu.Shares), f+"shares")
		}
		// The period first: the kernel checks the quota against it.
		if cpu.Period != nil && *cpu.Period != 0 {
			c.add(key, "cpu.cfs_period_us", utoa(*cpu.Period), f+"period")
		}
		if cpu.Quota != nil {
			c.add(key, "cpu.cfs_quota_us", itoa(*cpu.Quota), f+"quota")
		}
		if cpu.Burst != nil {
			c.add(key, "cpu.cfs_burst_us", utoa(*cpu.Burst), f+"burst")
		}
		// The rt period before the runtime, which must fit in it.
		if cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0 {
			c.add(key, "cpu.rt_period_us", utoa(*cpu.RealtimePeriod), f+"realtimePeriod")
		}
		if cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime != 0 {
			c.add(key, "cpu.rt_runtime_us", itoa(*cpu.RealtimeRuntime), f+"realtimeRuntime")
		}
		if cpu.Idle != nil {
			c.add(key, "cpu.idle", itoa(*cpu.Idle), f+"idle")
		}
		return nil
	}
	if cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime != 0 {
		return fieldErr(f+"realtimeRuntime", ErrNotSupported, "cgroup v2 has no realtime group scheduling")
	}
	if cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0 {
		return fieldErr(f+"realtimePeriod", ErrNotSupported, "cgroup v2 has no realtime group scheduling")
	}
	if cpu.Shares != nil && *cpu.Shares != 0 {
		c.add(key, "cpu.weight", utoa(SharesToWeight(*cpu.Shares)), f+"shares")
	}
	if cpu.Quota != nil || (cpu.Period != nil && *cpu.Period != 0) {
		q := "max"
		if cpu.Quota != nil && *cpu.Quota > 0 {
			q = itoa(*cpu.Quota)
		}
		field := f + "quota"
		if cpu.Period != nil && *cpu.Period != 0 {
			q += " " + utoa(*cpu.Period)
			if cpu.Quota == nil {
				field = f + "period"
				c.warn(field, "cpu.max takes quota and period together: a period without a quota resets the quota to max")
			}
		}
		c.add(key, "cpu.max", q, field)
	}
	if cpu.Burst != nil {
		c.add(key, "cpu.max.burst", utoa(*cpu.Burst), f+"burst")
	}
	if cpu.Idle != nil {
		c.add(key, "cpu.idle", itoa(*cpu.Idle), f+"idle")
	}
	return nil
}

// SharesToWeight converts v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000], linearly, the
// conversion the OCI runtimes agree on. Out-of-range shares are clamped first; 0 stays 0 (unset).
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// BlkioToIOWeight converts a v1 blkio weight [10, 1000] to a v2 io.weight [1, 10000].
func BlkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	v := uint64(min(max(w, 10), 1000))
	return 1 + (v-10)*9999/990
}

func (c *converter) memory(r *specs.LinuxResources) error {
	m := r.Memory
	if m == nil {
		return nil
	}
	f := res + "memory."
	for _, v := range []struct {
		name string
		p    *int64
	}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}, {"kernel", m.Kernel}, {"kernelTCP", m.KernelTCP}} {
		if v.p != nil && *v.p < -1 {
			return fieldErr(f+v.name, ErrInvalid, "%d: must be -1 (unlimited) or a byte count", *v.p)
		}
	}
	if m.Swappiness != nil && *m.Swappiness > 100 {
		return fieldErr(f+"swappiness", ErrInvalid, "%d: must be 0 to 100", *m.Swappiness)
	}
	limit := int64(0)
	if m.Limit != nil {
		limit = *m.Limit
	}
	if m.Swap != nil && *m.Swap > 0 && limit > 0 && *m.Swap < limit {
		return fieldErr(f+"swap", ErrInvalid, "%d is below memory.limit %d (swap is memory plus swap)", *m.Swap, limit)
	}
	if m.Swap != nil && *m.Swap > 0 && limit == -1 {
		return fieldErr(f+"swap", ErrInvalid, "%d is limited while memory.limit is unlimited", *m.Swap)
	}
	c.plan.MemoryLimit = limit
	c.plan.CheckBeforeUpdate = m.CheckBeforeUpdate != nil && *m.CheckBeforeUpdate
	set := m.Limit != nil && limit != 0 || m.Reservation != nil || m.Swap != nil && *m.Swap != 0 || m.Kernel != nil ||
		m.KernelTCP != nil || m.Swappiness != nil || m.DisableOOMKiller != nil && *m.DisableOOMKiller ||
		m.UseHierarchy != nil
	if !set {
		return nil
	}
	key, unified, err := c.pick(f+"limit", "memory", "memory")
	if err != nil {
		return err
	}
	if !unified {
		if limit != 0 {
			c.add(key, "memory.limit_in_bytes", itoa(limit), f+"limit")
		}
		if m.Swap != nil && *m.Swap != 0 {
			// The apply step swaps this pair's order when the kernel refuses it (memsw must
			// stay >= the limit at every step).
			c.add(key, "memory.memsw.limit_in_bytes", itoa(*m.Swap), f+"swap")
		}
		if m.Reservation != nil {
			c.add(key, "memory.soft_limit_in_bytes", itoa(*m.Reservation), f+"reservation")
		}
		if m.Kernel != nil {
			c.warn(f+"kernel", "kernel memory limits are deprecated and refused by recent kernels")
			c.add(key, "memory.kmem.limit_in_bytes", itoa(*m.Kernel), f+"kernel")
		}
		if m.KernelTCP != nil {
			c.add(key, "memory.kmem.tcp.limit_in_bytes", itoa(*m.KernelTCP), f+"kernelTCP")
		}
		if m.Swappiness != nil {
			c.add(key, "memory.swappiness", utoa(*m.Swappiness), f+"swappiness")
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			c.add(key, "memory.oom_control", "1", f+"disableOOMKiller")
		}
		if m.UseHierarchy != nil {
			c.add(key, "memory.use_hierarchy", boolStr(*m.UseHierarchy), f+"useHierarchy")
		}
		return nil
	}
	if m.Kernel != nil {
		return fieldErr(f+"kernel", ErrNotSupported, "cgroup v2 has no separate kernel memory limit")
	}
	if m.KernelTCP != nil {
		return fieldErr(f+"kernelTCP", ErrNotSupported, "cgroup v2 has no separate kernel TCP memory limit")
	}
	if m.Swappiness != nil {
		return fieldErr(f+"swappiness", ErrNotSupported, "cgroup v2 has no per-cgroup swappiness")
	}
	if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
		return fieldErr(f+"disableOOMKiller", ErrNotSupported, "cgroup v2 cannot disable the OOM killer")
	}
	if m.UseHierarchy != nil && !*m.UseHierarchy {
		return fieldErr(f+"useHierarchy", ErrNotSupported, "cgroup v2 is always hierarchical")
	}
	if limit != 0 {
		c.add(key, "memory.max", maxOr(limit, true), f+"limit")
	}
	if m.Swap != nil && *m.Swap != 0 {
		// v2 limits swap alone; the spec's swap is memory plus swap.
		switch {
		case *m.Swap == -1:
			c.add(key, "memory.swap.max", "max", f+"swap")
		case limit <= 0:
			return fieldErr(f+"swap", ErrInvalid, "cgroup v2 needs memory.limit to derive memory.swap.max from memory plus swap")
		default:
			c.add(key, "memory.swap.max", itoa(*m.Swap-limit), f+"swap")
		}
	}
	if m.Reservation != nil {
		c.add(key, "memory.low", maxOr(*m.Reservation, true), f+"reservation")
	}
	return nil
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (c *converter) pids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	field := res + "pids.limit"
	key, _, err := c.pick(field, "pids", "pids")
	if err != nil {
		return err
	}
	v := "max" // -1 and 0 both mean unlimited, as the runtimes have always read them.
	if *r.Pids.Limit == 0 {
		c.warn(field, "a pids limit of 0 means unlimited")
	}
	if *r.Pids.Limit > 0 {
		v = itoa(*r.Pids.Limit)
	}
	c.add(key, "pids.max", v, field)
	return nil
}

func (c *converter) blockIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil {
		return nil
	}
	f := res + "blockIO."
	if b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 && len(b.ThrottleReadBpsDevice) == 0 &&
		len(b.ThrottleWriteBpsDevice) == 0 && len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0 {
		return nil
	}
	key, unified, err := c.pick(f+"weight", "blkio", "io")
	if err != nil {
		return err
	}
	checkW := func(field string, w *uint16) error {
		if w != nil && (*w < 10 || *w > 1000) && *w != 0 {
			return fieldErr(field, ErrInvalid, "%d: must be 10 to 1000", *w)
		}
		return nil
	}
	if err := checkW(f+"weight", b.Weight); err != nil {
		return err
	}
	if err := checkW(f+"leafWeight", b.LeafWeight); err != nil {
		return err
	}
	for i, d := range b.WeightDevice {
		df := fmt.Sprintf("%sweightDevice[%d]", f, i)
		if d.Major < 0 || d.Minor < 0 {
			return fieldErr(df, ErrInvalid, "negative device number %d:%d", d.Major, d.Minor)
		}
		if err := checkW(df+".weight", d.Weight); err != nil {
			return err
		}
		if err := checkW(df+".leafWeight", d.LeafWeight); err != nil {
			return err
		}
	}
	if !unified {
		if b.Weight != nil && *b.Weight != 0 {
			w := utoa(uint64(*b.Weight))
			c.addAlt(key, "blkio.weight", w, "blkio.bfq.weight", w, f+"weight")
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			c.add(key, "blkio.leaf_weight", utoa(uint64(*b.LeafWeight)), f+"leafWeight")
		}
		for i, d := range b.WeightDevice {
			df := fmt.Sprintf("%sweightDevice[%d]", f, i)
			dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
			if d.Weight != nil {
				v := fmt.Sprintf("%s %d", dev, *d.Weight)
				c.addAlt(key, "blkio.weight_device", v, "blkio.bfq.weight_device", v, df+".weight")
			}
			if d.LeafWeight != nil {
				c.add(key, "blkio.leaf_weight_device", fmt.Sprintf("%s %d", dev, *d.LeafWeight), df+".leafWeight")
			}
		}
		for _, t := range []struct {
			name, file string
			devs       []specs.LinuxThrottleDevice
		}{
			{"throttleReadBpsDevice", "blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
			{"throttleWriteBpsDevice", "blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
			{"throttleReadIOPSDevice", "blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
			{"throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
		} {
			for i, d := range t.devs {
				df := fmt.Sprintf("%s%s[%d]", f, t.name, i)
				if d.Major < 0 || d.Minor < 0 {
					return fieldErr(df, ErrInvalid, "negative device number %d:%d", d.Major, d.Minor)
				}
				c.add(key, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate), df)
			}
		}
		return nil
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		return fieldErr(f+"leafWeight", ErrNotSupported, "cgroup v2 has no leaf weights")
	}
	if b.Weight != nil && *b.Weight != 0 {
		// BFQ takes the v1 scale as is; io.weight (other schedulers) the converted one.
		c.addAlt(key, "io.bfq.weight", utoa(uint64(*b.Weight)), "io.weight", utoa(BlkioToIOWeight(*b.Weight)), f+"weight")
	}
	for i, d := range b.WeightDevice {
		df := fmt.Sprintf("%sweightDevice[%d]", f, i)
		if d.LeafWeight != nil {
			return fieldErr(df+".leafWeight", ErrNotSupported, "cgroup v2 has no leaf weights")
		}
		if d.Weight != nil {
			dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
			c.addAlt(key, "io.bfq.weight", fmt.Sprintf("%s %d", dev, *d.Weight),
				"io.weight", fmt.Sprintf("%s %d", dev, BlkioToIOWeight(*d.Weight)), df+".weight")
		}
	}
	// io.max takes every limit of a device on one line; 0 means no limit ("max").
	type dev struct{ major, minor int64 }
	limits := map[dev][]string{}
	fields := map[dev]string{}
	var order []dev
	for _, t := range []struct {
		name, key string
		devs      []specs.LinuxThrottleDevice
	}{
		{"throttleReadBpsDevice", "rbps", b.ThrottleReadBpsDevice},
		{"throttleWriteBpsDevice", "wbps", b.ThrottleWriteBpsDevice},
		{"throttleReadIOPSDevice", "riops", b.ThrottleReadIOPSDevice},
		{"throttleWriteIOPSDevice", "wiops", b.ThrottleWriteIOPSDevice},
	} {
		for i, d := range t.devs {
			df := fmt.Sprintf("%s%s[%d]", f, t.name, i)
			if d.Major < 0 || d.Minor < 0 {
				return fieldErr(df, ErrInvalid, "negative device number %d:%d", d.Major, d.Minor)
			}
			k := dev{d.Major, d.Minor}
			if _, ok := limits[k]; !ok {
				order = append(order, k)
				fields[k] = df
			}
			v := "max"
			if d.Rate != 0 {
				v = utoa(d.Rate)
			}
			limits[k] = append(limits[k], t.key+"="+v)
		}
	}
	for _, k := range order {
		c.add(key, "io.max", fmt.Sprintf("%d:%d %s", k.major, k.minor, strings.Join(limits[k], " ")), fields[k])
	}
	return nil
}

var cpuListRe = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)

var pageSizeRe = regexp.MustCompile(`^[1-9][0-9]*[KMG]B$`)

func (c *converter) hugepages(r *specs.LinuxResources) error {
	for i, h := range r.HugepageLimits {
		field := fmt.Sprintf("%shugepageLimits[%d]", res, i)
		if !pageSizeRe.MatchString(h.Pagesize) {
			return fieldErr(field+".pageSize", ErrInvalid, "%q: want a size like 2MB or 1GB", h.Pagesize)
		}
		key, unified, err := c.pick(field, "hugetlb", "hugetlb")
		if err != nil {
			return err
		}
		if unified {
			c.add(key, "hugetlb."+h.Pagesize+".max", utoa(h.Limit), field)
		} else {
			c.add(key, "hugetlb."+h.Pagesize+".limit_in_bytes", utoa(h.Limit), field)
		}
	}
	return nil
}

func (c *converter) network(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	f := res + "network."
	if n.ClassID != nil {
		key, _, err := c.pick(f+"classID", "net_cls", "")
		if err != nil {
			return err
		}
		c.add(key, "net_cls.classid", utoa(uint64(*n.ClassID)), f+"classID")
	}
	for i, p := range n.Priorities {
		field := fmt.Sprintf("%spriorities[%d]", f, i)
		if p.Name == "" || strings.ContainsAny(p.Name, " \n/") {
			return fieldErr(field+".name", ErrInvalid, "%q is not an interface name", p.Name)
		}
		key, _, err := c.pick(field, "net_prio", "")
		if err != nil {
			return err
		}
		c.add(key, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority), field)
	}
	return nil
}

func (c *converter) rdma(r *specs.LinuxResources) error {
	names := make([]string, 0, len(r.Rdma))
	for k := range r.Rdma {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		v := r.Rdma[name]
		field := fmt.Sprintf("%srdma[%q]", res, name)
		if name == "" || strings.ContainsAny(name, " \n=") {
			return fieldErr(field, ErrInvalid, "%q is not an RDMA device name", name)
		}
		if v.HcaHandles == nil && v.HcaObjects == nil {
			continue
		}
		key, _, err := c.pick(field, "rdma", "rdma")
		if err != nil {
			return err
		}
		line := name
		if v.HcaHandles != nil {
			line += fmt.Sprintf(" hca_handle=%d", *v.HcaHandles)
		}
		if v.HcaObjects != nil {
			line += fmt.Sprintf(" hca_object=%d", *v.HcaObjects)
		}
		c.add(key, "rdma.max", line, field)
	}
	return nil
}

// coreFiles are cgroup2 core files that are not resources: writing them from a spec would move
// processes or change the tree.
var coreFiles = map[string]bool{
	"cgroup.procs": true, "cgroup.threads": true, "cgroup.subtree_control": true, "cgroup.kill": true,
	"cgroup.freeze": true, "cgroup.type": true, "cgroup.controllers": true, "cgroup.events": true,
	"cgroup.stat": true,
}

func (c *converter) unified(r *specs.LinuxResources) error {
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := fmt.Sprintf("%sunified[%q]", res, k)
		ctrl, _, ok := strings.Cut(k, ".")
		if !ok || ctrl == "" || strings.ContainsAny(k, "/\x00") || coreFiles[k] {
			return fieldErr(field, ErrInvalid, "%q is not a cgroup v2 resource file", k)
		}
		var uni *Hierarchy
		for i := range c.hs {
			if c.hs[i].Unified {
				uni = &c.hs[i]
			}
		}
		if uni == nil {
			return fieldErr(field, ErrNotSupported, "no cgroup v2 hierarchy on this %s machine", c.plan.Layout)
		}
		if ctrl != "cgroup" && !uni.has(ctrl) {
			return fieldErr(field, ErrNotSupported, "controller %q is not in the unified hierarchy (has %s)",
				ctrl, strings.Join(uni.Controllers, " "))
		}
		c.add(uni.Key(), k, r.Unified[k], field)
	}
	return nil
}
