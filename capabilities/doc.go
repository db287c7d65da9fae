// Package capabilities owns Process.Capabilities of the OCI runtime spec.
package capabilities
