package vlogstest

import "syscall"

// procAttr makes the kernel kill VictoriaLogs when the test process dies,
// so a test binary killed by go test's timeout leaves no server behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
