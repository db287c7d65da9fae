// Package escape holds the attacker the escape battery runs inside containers: a static program
// (cmd/libjail-escape) that performs, in the order given on its command line, the steps an
// attacker with the container's privileges would try, and prints what each step got as one JSON
// object ([Result]). It decides nothing: the tests on the host read the results and check the host.
//
// The program is built like the probe (CGO_ENABLED=0, by internal/fixtures.Escape) and copied into
// a test rootfs at [Path].
package escape

// Path is where the attacker lives inside a rootfs built for the battery.
const Path = "/libjail-escape"

// Result maps each step ("op arg") to "ok", an errno name (EPERM, ENOENT, ...) or what it read.
// Steps that scan (exes, setns, roots) add one key per thing they tried.
type Result map[string]string
