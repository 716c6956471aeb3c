package config

import (
	"reflect"
	"testing"
	"time"
)

// TestRegistry guards the one table every feature depends on: each
// field has the Go type its kind produces, and each default is valid.
func TestRegistry(t *testing.T) {
	types := map[kind]reflect.Type{
		kString: reflect.TypeFor[string](), kPath: reflect.TypeFor[string](), kEnum: reflect.TypeFor[string](),
		kBool: reflect.TypeFor[bool](), kInt: reflect.TypeFor[int](), kPort: reflect.TypeFor[int](), kPortOff: reflect.TypeFor[int](),
		kDuration: reflect.TypeFor[time.Duration](), kList: reflect.TypeFor[[]string](),
	}
	for i := range settings {
		s := &settings[i]
		if s.kind == kEnum && s.enum == nil {
			t.Errorf("%s: enum without values", s.name)
		}
		if s.def != "" {
			if _, msg := s.convert(s.def); msg != "" {
				t.Errorf("%s: default %q: %s", s.name, s.def, msg)
			}
		}
		if s.field == nil {
			continue
		}
		if got := reflect.TypeOf(s.get(&Config{})); got != types[s.kind] {
			t.Errorf("%s: field is %v, kind needs %v", s.name, got, types[s.kind])
		}
	}
	for from, r := range renamed {
		if known[from] != nil || known[r.to] == nil {
			t.Errorf("renamed %s -> %s: must map an unknown key to a known one", from, r.to)
		}
	}
}

// Validate catches values set by code, not only by files.
func TestValidateStruct(t *testing.T) {
	tests := []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Network.ClientPort = 0 }, `b.conf: plugin.choria.network.client_port = "0": not a port number (1-65535)`},
		{func(c *Config) { c.StatsPort = -1 }, `b.conf: plugin.choria.stats_port = "-1": not a port number (1-65535, or 0 to turn it off)`},
		{func(c *Config) { c.Network.TLSTimeout = time.Hour }, `b.conf: plugin.choria.network.tls_timeout = "1h0m0s": must be more than 0s and at most 60s`},
		{func(c *Config) { c.LogLevel = "loud" }, `b.conf: loglevel = "loud": not one of debug, info, warn, error`},
		{func(c *Config) { c.Collectives = nil }, `b.conf: collectives: needs at least one collective, such as mcollective`},
		{func(c *Config) { c.MainCollective = "x" }, `b.conf: main_collective: "x" is not one of collectives (mcollective); add it to collectives or pick one of those`},
	}
	for _, tt := range tests {
		c := Default()
		c.File = "b.conf"
		tt.change(c)
		if err := c.Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("got  %v\nwant %s", err, tt.want)
		}
	}
}

func TestEnumAliases(t *testing.T) {
	for in, want := range map[string]string{"warning": "warn", "WARN": "warn", "fatal": "error", "Debug": "debug"} {
		c, err := Parse("x.conf", []byte("identity = a.b.c\nloglevel = "+in+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.LogLevel != want {
			t.Errorf("loglevel %q stored as %q, want %q", in, c.LogLevel, want)
		}
	}
}
