package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// unifiedMount is where this machine's hybrid layout mounts cgroup2; crun refuses the layout
// unless it runs in a private mount namespace where that mount is gone.
const unifiedMount = "/sys/fs/cgroup/unified"

// crunWrapper runs its arguments in a private mount namespace without the unified hierarchy.
var crunWrapper = []string{"unshare", "-m", "sh", "-c", "umount " + unifiedMount + " 2>/dev/null; exec \"$@\"", "sh"}

// ociCLI is one OCI runtime's command line: runc, crun, or libjail's examples.
type ociCLI struct {
	Name  string
	wrap  []string // prefix (crun's private mount namespace)
	bin   string
	state string // --root directory; "" for examples/run, which keeps no state
}

func (r *ociCLI) base() []string {
	args := append(append([]string(nil), r.wrap...), r.bin)
	if r.state != "" {
		args = append(args, "--root", r.state)
	}
	return args
}

// runArgs is `run` of bundle as container id, in the foreground.
func (r *ociCLI) runArgs(bundle, id string) []string {
	if r.state == "" { // examples/run
		return []string{r.bin, "--bundle", bundle, "--id", id}
	}
	return append(r.base(), "run", "--bundle", bundle, id)
}

func (r *ociCLI) detachArgs(bundle, id string) []string {
	return append(r.base(), "run", "--detach", "--bundle", bundle, id)
}

func (r *ociCLI) execArgs(id string, args ...string) []string {
	return append(append(r.base(), "exec", id), args...)
}

func (r *ociCLI) deleteArgs(id string) []string {
	return append(r.base(), "delete", "--force", id)
}

// runtimes returns the command lines present on this machine, with a note for each one skipped.
// withRun includes examples/run (it has no exec).
func runtimes(dir, runBin, oci string, withRun bool) ([]*ociCLI, map[string]string, error) {
	skipped := map[string]string{}
	var rs []*ociCLI
	if withRun {
		if runBin == "" {
			return nil, nil, errors.New("-run: the examples/run binary is needed")
		}
		rs = append(rs, &ociCLI{Name: "libjail-run", bin: runBin})
	}
	if oci != "" && fileExists(oci) {
		rs = append(rs, &ociCLI{Name: "ociruntime", bin: oci, state: filepath.Join(dir, "libjail-bench-state-ociruntime")})
	} else {
		skipped["ociruntime"] = "examples/ociruntime does not exist yet"
	}
	for _, name := range []string{"runc", "crun"} {
		p, err := exec.LookPath(name)
		if err != nil {
			skipped[name] = "not installed"
			continue
		}
		r := &ociCLI{Name: name, bin: p, state: filepath.Join(dir, "libjail-bench-state-"+name)}
		if name == "crun" {
			r.wrap = crunWrapper
		}
		rs = append(rs, r)
	}
	for _, r := range rs {
		if r.state != "" {
			if err := os.MkdirAll(r.state, 0o700); err != nil {
				return nil, nil, err
			}
		}
	}
	return rs, skipped, nil
}

// cleanupState deletes whatever containers are left in r's state directory, then the directory.
func (r *ociCLI) cleanupState() {
	if r.state == "" {
		return
	}
	ents, _ := os.ReadDir(r.state)
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "libjail-bench-") {
			_, _ = timed(r.deleteArgs(e.Name()), false)
		}
	}
	_ = os.RemoveAll(r.state)
}

// timed runs args to completion with stdin from /dev/null and returns its wall time. With
// detached, stdio all go to /dev/null (a detached container keeps them open); otherwise output is
// kept for the error message.
func timed(args []string, detached bool) (time.Duration, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = devnull
	var out bytes.Buffer
	if detached {
		cmd.Stdout, cmd.Stderr = devnull, devnull
	} else {
		cmd.Stdout, cmd.Stderr = &out, &out
	}
	t := time.Now()
	err = cmd.Run()
	d := time.Since(t)
	if err != nil {
		return d, fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return d, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
