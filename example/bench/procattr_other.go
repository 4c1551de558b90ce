//go:build !linux

package main

import "os/exec"

// setParentDeath does nothing here: only Linux can tie a child's life to
// its parent's.
func setParentDeath(*exec.Cmd) {}
