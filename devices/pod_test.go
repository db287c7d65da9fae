package devices

import (
	"encoding/json"
	"testing"
)

func hierarchies(t *testing.T) map[string]func(*testing.T) (string, bool) {
	return map[string]func(*testing.T) (string, bool){
		"v1": func(t *testing.T) (string, bool) { return v1Root(t), false },
		"v2": func(t *testing.T) (string, bool) { return v2Root(t), true },
	}
}

func TestPod(t *testing.T) {
	for name, h := range hierarchies(t) {
		t.Run(name, func(t *testing.T) {
			root, v2 := h(t)
			disk := diskNode(t)
			podDir := mkCgroup(t, root, "pod")
			p, err := NewPod(podDir, v2)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := p.Close(); err != nil {
					t.Error(err)
				}
				if v2 {
					attachedIDs(t, podDir, 0)
				}
			})
			expectOpens(t, "new pod", probe(t, podDir, disk), map[string]string{"null": "ok", "full": "ok", "kmsg": "EPERM", "blk": "EPERM", "disk": "EPERM"})

			// Container rules: what runc would give (deny all, the defaults) minus /dev/full.
			ctrRules := append(PodDefaultRules(), r(t, "deny c 1:7 rwm")...)
			ctrDir := mkCgroup(t, podDir, "ctr1")
			c1, err := p.AddContainer(ctrDir, ctrRules)
			if err != nil {
				t.Fatal(err)
			}
			expectOpens(t, "container", probe(t, ctrDir, disk), map[string]string{"null": "ok", "full": "EPERM", "kmsg": "EPERM", "blk": "EPERM"})

			// Hot-plug /dev/kmsg (1:11) and the loop device: the pod widens, then the container.
			plugged := append(ctrRules, r(t, "allow c 1:11 r", "allow b 7:0 r")...)
			if err := c1.Update(plugged); err != nil {
				t.Fatal(err)
			}
			expectOpens(t, "hot-plugged container", probe(t, ctrDir, disk), map[string]string{"kmsg": "ok", "blk": "ok", "disk": "EPERM", "full": "EPERM"})
			expectOpens(t, "hot-plugged pod", probe(t, podDir, disk), map[string]string{"kmsg": "ok", "blk": "ok", "disk": "EPERM"})

			// Unplug: the container first, then the pod narrows back to its defaults.
			if err := c1.Update(ctrRules); err != nil {
				t.Fatal(err)
			}
			expectOpens(t, "unplugged container", probe(t, ctrDir, disk), map[string]string{"kmsg": "EPERM", "blk": "EPERM"})
			expectOpens(t, "unplugged pod", probe(t, podDir, disk), map[string]string{"kmsg": "EPERM", "blk": "EPERM"})
			if p.AllowAll() {
				t.Fatal("pod in allow-all mode without an allow-all container")
			}

			// A privileged container (allow all) switches the pod to allow-all, for good; the other
			// container keeps its own rules.
			ctr2 := mkCgroup(t, podDir, "ctr2")
			c2, err := p.AddContainer(ctr2, []Rule{AllowAll()})
			if err != nil {
				t.Fatal(err)
			}
			if !p.AllowAll() {
				t.Fatal("pod not in allow-all mode")
			}
			expectOpens(t, "privileged container", probe(t, ctr2, disk), map[string]string{"kmsg": "ok", "blk": "ok", "full": "ok"})
			expectOpens(t, "first container", probe(t, ctrDir, disk), map[string]string{"kmsg": "EPERM", "blk": "EPERM", "full": "EPERM"})
			if err := c2.Close(); err != nil {
				t.Fatal(err)
			}
			expectOpens(t, "pod after the privileged container left", probe(t, podDir, disk), map[string]string{"blk": "ok"})
			if err := c1.Close(); err != nil {
				t.Fatal(err)
			}
			if v2 {
				attachedIDs(t, ctrDir, 0)
				attachedIDs(t, ctr2, 0)
				attachedIDs(t, podDir, 1)
			}
		})
	}
}

func TestPodErrors(t *testing.T) {
	for name, h := range hierarchies(t) {
		t.Run(name, func(t *testing.T) {
			root, v2 := h(t)
			podDir := mkCgroup(t, root, "pod")
			p, err := NewPod(podDir, v2)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if _, err := p.AddContainer(podDir+"/missing", PodDefaultRules()); err == nil {
				t.Fatal("container cgroup that does not exist: no error")
			}
			if _, err := p.AddContainer(podDir, []Rule{{Type: 'x'}}); err == nil {
				t.Fatal("bad rule: no error")
			}
			// The failed container left the pod as it was.
			got, _ := AttachedPrograms(podDir)
			if v2 && len(got) != 1 {
				t.Fatalf("pod programs %v", got)
			}
			if !v2 {
				if cur, err := readV1(podDir); err != nil || !cur.equal(effective(PodDefaultRules())) {
					t.Fatalf("pod list: %v, %v", cur, err)
				}
			}
		})
	}
}

// A second process takes the pod over from its JSON state, hot-plugs and tears down.
func TestLoadPod(t *testing.T) {
	for name, h := range hierarchies(t) {
		t.Run(name, func(t *testing.T) {
			root, v2 := h(t)
			nodes := diskNode(t)
			podDir := mkCgroup(t, root, "pod")
			p, err := NewPod(podDir, v2)
			if err != nil {
				t.Fatal(err)
			}
			ctrDir := mkCgroup(t, podDir, "ctr")
			if _, err := p.AddContainer(ctrDir, PodDefaultRules()); err != nil {
				t.Fatal(err)
			}
			st, err := p.State()
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			// The first process goes away without detaching anything.
			p.release()
			var back PodState
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			q, err := LoadPod(back)
			if err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			c := q.Container(ctrDir)
			if c == nil {
				t.Fatalf("container %s not in %s", ctrDir, b)
			}
			if err := c.Update(append(PodDefaultRules(), r(t, "allow b 7:0 r")...)); err != nil {
				t.Fatal(err)
			}
			expectOpens(t, "hot-plugged after takeover", probe(t, ctrDir, nodes), map[string]string{"blk": "ok", "kmsg": "EPERM"})
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if v2 {
				attachedIDs(t, ctrDir, 0)
				attachedIDs(t, podDir, 0)
			}
		})
	}
}
