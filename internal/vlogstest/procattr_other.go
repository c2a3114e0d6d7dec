//go:build !linux

package vlogstest

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
