package seccomp

import "testing"

// BenchmarkCompileDefault is the uncached cost: translation with libseccomp, export, the stub.
func BenchmarkCompileDefault(b *testing.B) {
	spec := Default()
	for b.Loop() {
		if _, err := compile(spec, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileCached is the per-container cost of a profile seen before: hashing the profile
// and copying the cached program.
func BenchmarkCompileCached(b *testing.B) {
	spec := Default()
	if _, err := Compile(spec, Options{}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Compile(spec, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
