package config

import (
	"testing"
	"time"
)

func TestParseBool(t *testing.T) {
	tests := []struct {
		in       string
		want, ok bool
	}{
		{"1", true, true}, {"yes", true, true}, {"YES", true, true}, {"true", true, true}, {"True", true, true},
		{"y", true, true}, {"Y", true, true}, {"t", true, true}, {"T", true, true},
		{"0", false, true}, {"no", false, true}, {"No", false, true}, {"false", false, true}, {"FALSE", false, true},
		{"n", false, true}, {"f", false, true}, {"F", false, true},
		{"", false, false}, {"on", false, false}, {"off", false, false}, {"2", false, false}, {"yes please", false, false},
	}
	for _, tt := range tests {
		got, ok := parseBool(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseBool(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseDuration(t *testing.T) {
	const day = 24 * time.Hour
	good := []struct {
		in   string
		want time.Duration
	}{
		{"0", 0},
		{"10", 10 * time.Second},
		{"10s", 10 * time.Second},
		{"500ms", 500 * time.Millisecond},
		{"1m30s", 90 * time.Second},
		{"2h", 2 * time.Hour},
		{"1.5h", 90 * time.Minute},
		{"1d", day},
		{"1d12h", 36 * time.Hour},
		{"0.5d", 12 * time.Hour},
		{"1w", 7 * day},
		{"2w1d", 15 * day},
		{"1M", 30 * day},
		{"1Y", 365 * day},
		{"1h1m1s1ms1us1ns", time.Hour + time.Minute + time.Second + time.Millisecond + time.Microsecond + time.Nanosecond},
	}
	for _, tt := range good {
		got, ok := parseDuration(tt.in)
		if !ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
	bad := []string{"", "-1s", "+1s", "10 s", "1x", "d", "1d2", "1.2.3s", "s10", "1D", "99999999999999999999", "300000Y", "9223372037s", "200000d200000d"}
	for _, in := range bad {
		if got, ok := parseDuration(in); ok {
			t.Errorf("parseDuration(%q) = %v, want an error", in, got)
		}
	}
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in     string
		zeroOK bool
		want   int
		ok     bool
	}{
		{"4222", false, 4222, true}, {"1", false, 1, true}, {"65535", false, 65535, true},
		{"0", false, 0, false}, {"0", true, 0, true}, {"65536", true, 0, false}, {"-1", true, 0, false},
		{"42x", false, 0, false}, {"", true, 0, false}, {"4 222", false, 0, false},
	}
	for _, tt := range tests {
		got, ok := parsePort(tt.in, tt.zeroOK)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parsePort(%q, %v) = %d, %v; want %d, %v", tt.in, tt.zeroOK, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCheckPublicURL(t *testing.T) {
	good := []string{"", "broker.example.net:4222", "nats://broker.example.net:4222", "[::1]:4222", "10.0.0.1:1"}
	bad := []string{"broker.example.net", "broker:0", "broker:70000", ":4222", "http://b:4222", "nats://b", "nats://u:p@b:4222", "nats://b:4222/x", "tls://b:4222"}
	for _, in := range good {
		if msg := checkPublicURL(in); msg != "" {
			t.Errorf("%q: unexpected %q", in, msg)
		}
	}
	for _, in := range bad {
		if msg := checkPublicURL(in); msg == "" {
			t.Errorf("%q: accepted", in)
		}
	}
}

func TestCheckRegexps(t *testing.T) {
	if msg := checkRegexps([]string{`\.mcollective$`, `/\.choria$/`, `/`}); msg != "" {
		t.Error(msg)
	}
	if msg := checkRegexps([]string{`ok`, `/[/`}); msg == "" {
		t.Error("bad pattern accepted")
	}
}
