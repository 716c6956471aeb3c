// Package limits raises process limits a broker or an emulated fleet needs.
package limits

import (
	"fmt"
	"syscall"
)

// RaiseNoFile raises the open-file limit to at least want (soft and, when
// allowed, hard) and returns the soft limit now in force. Raising the hard
// limit needs root; without it the soft limit goes up to the hard one.
func RaiseNoFile(want uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur >= want {
		return l.Cur, nil
	}
	if l.Max < want {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return want, nil
		}
	}
	l.Cur = min(want, l.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < want {
		return l.Cur, fmt.Errorf("open-file limit is %d, below the %d wanted; raise it (ulimit -n, or LimitNOFILE= in the service unit)", l.Cur, want)
	}
	return l.Cur, nil
}

// HardNoFile is the open-file hard limit: how far RaiseNoFile can go
// without root.
func HardNoFile() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return l.Max, nil
}
