package openapi

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel stop cmd when the test process dies, so a
// test run that crashes or times out leaves no service behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
