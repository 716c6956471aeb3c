package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// secondsFlag is a duration flag that also takes a bare number of seconds,
// as choria's --timeout does ("5" is 5 s, "1.5" is 1.5 s), beside Go
// durations ("5s", "500ms"). It must be more than zero.
type secondsFlag struct{ d *time.Duration }

func (f secondsFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f secondsFlag) Type() string { return "seconds" }

func (f secondsFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	var d time.Duration
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n > float64(24*time.Hour/time.Second) {
			return fmt.Errorf("%s seconds is more than a day", s)
		}
		d = time.Duration(n * float64(time.Second))
	} else if d, err = time.ParseDuration(s); err != nil {
		return fmt.Errorf("want whole seconds (5) or a duration (5s, 500ms)")
	}
	if d <= 0 {
		return fmt.Errorf("must be more than zero")
	}
	*f.d = d
	return nil
}
