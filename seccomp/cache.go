package seccomp

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// maxCached bounds the cache; an agent sees few distinct profiles, so eviction is rare and
// simply drops an arbitrary entry.
const maxCached = 64

// programs caches compiled programs by the SHA-256 of the profile's JSON. The JSON encoding of
// specs.LinuxSeccomp is deterministic (structs and slices only, no maps), so equal content gives an
// equal key. The native architecture and libseccomp version, the other inputs, are fixed for the
// life of the process.
var programs = &cache{m: map[[sha256.Size]byte]*Program{}}

type cache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*Program
}

func cacheKey(v any) ([sha256.Size]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("seccomp: encode profile: %w", err)
	}
	return sha256.Sum256(b), nil
}

func (c *cache) get(k [sha256.Size]byte) *Program {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *cache) put(k [sha256.Size]byte, p *Program) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = p
}

func (c *cache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

// clone copies p deeply, so callers cannot change the cached program.
func (p *Program) clone() *Program {
	q := *p
	q.Filter = slices.Clone(p.Filter)
	q.Architectures = slices.Clone(p.Architectures)
	q.Warnings = slices.Clone(p.Warnings)
	return &q
}
