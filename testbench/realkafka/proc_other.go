//go:build !linux

package realkafka

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
