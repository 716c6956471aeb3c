package main

import (
	"fmt"
	"time"
)

// These check numeric flags before a command prints or changes anything;
// pflag parses numbers but takes any sign and size.

func positiveDuration(flag string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s %s: must be more than zero", flag, d)
	}
	return nil
}

func nonNegativeDuration(flag string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s %s: must not be negative", flag, d)
	}
	return nil
}

// portFlag checks a TCP port; off names what 0 means, "" when 0 is refused.
func portFlag(flag string, port int, off string) error {
	if port == 0 && off != "" {
		return nil
	}
	if port < 1 || port > 65535 {
		if off != "" {
			return fmt.Errorf("%s %d: not a port number (1-65535, or 0 to turn %s off)", flag, port, off)
		}
		return fmt.Errorf("%s %d: not a port number (1-65535)", flag, port)
	}
	return nil
}

// intRange checks a count flag against [lo, hi].
func intRange(flag string, v, lo, hi int) error {
	if v < lo || v > hi {
		return fmt.Errorf("%s %d: must be from %d to %d", flag, v, lo, hi)
	}
	return nil
}
