package main

import (
	"os/exec"
	"syscall"
)

// setParentDeath has the child killed if this process dies without
// stopping it (SIGKILL, a crash).
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
