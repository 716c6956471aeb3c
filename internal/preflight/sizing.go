package preflight

import (
	"fmt"
	"strconv"
	"strings"
)

// Figures measured on this project's brokers (see README: Reconnect storms).
const (
	// bytesPerNode is a broker's resident memory per connected node with
	// mutual TLS: ~630 MiB at 10 000 nodes.
	bytesPerNode = 65 << 10
	// baseMemory is a broker with no nodes, with room for the engine's buffers.
	baseMemory = 64 << 20
	// fdMargin is descriptors beyond the connections: listeners, routes,
	// the log, certificate and CRL files.
	fdMargin = 1024
)

// fdWant is the open-file limit wanted for n nodes: twice the fleet,
// because in a reconnect storm the sockets of dying connections and their
// replacements are open at once.
func fdWant(n int) int64 { return 2*int64(n) + fdMargin }

// fdNeed is the least that holds n nodes at all.
func fdNeed(n int) int64 { return int64(n) + fdMargin }

// atLeast is the verdict for a value that should be at least want and
// must be at least need.
func atLeast(found, need, want int64) Status {
	switch {
	case found >= want:
		return Pass
	case found >= need:
		return Warn
	}
	return Fail
}

// count formats a number with thin groups, as operators read them: 101 024.
func count(n int64) string {
	if n == int64(unlimited>>1) || uint64(n) == unlimited {
		return "unlimited"
	}
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// mib formats bytes as MiB or GiB.
func mib(b uint64) string {
	if b >= 10<<30 {
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", b>>20)
}

// plural says "1 CRL", "2 CRLs".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
