package main

import "testing"

// TestDebVersion: git describe versions become Debian versions that sort
// as the releases do (a pre-release before its release, later commits
// after it, untagged builds before everything).
func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                  "1.2.3",
		"1.2.3":                   "1.2.3",
		"v1.2.3-rc1":              "1.2.3~rc1",
		"v1.2.3-4-gabcdef0":       "1.2.3+4.gabcdef0",
		"v1.2.3-4-gabcdef0-dirty": "1.2.3+4.gabcdef0.dirty",
		"v1.2.3-dirty":            "1.2.3+dirty",
		"v1.2.3-rc1-2-g0123456":   "1.2.3~rc1+2.g0123456",
		"e6dee18-dirty":           "0.0.0~e6dee18+dirty",
		"development":             "0.0.0~development",
		"":                        "0.0.0~",
		"v2.0.0_beta/1":           "2.0.0.beta.1",
	} {
		if got := debVersion(in); got != want {
			t.Errorf("debVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
