package config

import (
	"math"
	"strconv"
	"strings"
)

// checkReplicas: -1 asks for the cluster's size; the engine allows 1-5.
func checkReplicas(v any) string {
	if n := v.(int); n != -1 && (n < 1 || n > 5) {
		return "must be -1 (the cluster's size, at most 3) or 1-5"
	}
	return ""
}

func checkStreamSize(v any) string {
	if _, _, err := ParseStreamSize(v.(string)); err != "" {
		return err
	}
	return ""
}

// ParseStreamSize reads stream.max_memory and stream.max_store: a
// percentage ("25%") of what the host has, or a size in bytes with an
// optional K, M, G or T (powers of 1024, a trailing B or iB allowed).
// Exactly one of bytes and percent is non-zero; err says what is allowed.
func ParseStreamSize(s string) (bytes int64, percent int, err string) {
	const help = "not a size: a percentage such as 25%, or bytes such as 1073741824, 512M, 2G, 1T"
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, e := strconv.Atoi(strings.TrimSpace(p))
		if e != nil || n < 1 || n > 100 {
			return 0, 0, "a percentage must be 1%-100%"
		}
		return 0, n, ""
	}
	u := strings.ToUpper(s)
	u = strings.TrimSuffix(strings.TrimSuffix(u, "IB"), "B")
	mult := int64(1)
	if len(u) > 0 {
		if i := strings.IndexByte("KMGT", u[len(u)-1]); i >= 0 {
			mult = int64(1) << (10 * (i + 1))
			u = u[:len(u)-1]
		}
	}
	n, e := strconv.ParseInt(strings.TrimSpace(u), 10, 64)
	if e != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, 0, help
	}
	return n * mult, 0, ""
}
