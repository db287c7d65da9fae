package cgroups

import (
	"log/slog"
	"regexp"
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

var cpuListRe = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)
