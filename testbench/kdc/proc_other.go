//go:build !linux

package kdc

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
