// Package cgroups owns Linux.CgroupsPath and Linux.Resources (all but devices) of the OCI runtime spec.
package cgroups
