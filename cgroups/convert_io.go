package cgroups

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Block I/O, huge pages, network, RDMA and raw unified keys.

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
