// Package seccomp owns Linux.Seccomp of the OCI runtime spec.
package seccomp
