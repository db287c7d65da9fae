package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/libjail/libjail/internal/bench"
)

// makeBundles writes dir/bundle (the benchmark container, /bin/true) and dir/bundle-sleep (the same
// container sleeping, for exec and memory), sharing one rootfs.
func makeBundles(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	b := filepath.Join(abs, "bundle")
	if err := os.RemoveAll(b); err != nil {
		return err
	}
	if err := bench.WriteBundle(b, "/bin/true"); err != nil {
		return err
	}
	return bench.WriteConfig(filepath.Join(abs, "bundle-sleep"), filepath.Join(b, "rootfs"), "/bin/sleep", "100000")
}

func writeJSON(dir, name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), append(data, '\n'), 0o644)
}

func readJSON(dir, name string, v any) error {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
