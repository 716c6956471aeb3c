package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseStreamSize(t *testing.T) {
	for _, c := range []struct {
		in      string
		bytes   int64
		percent int
		bad     bool
	}{
		{"25%", 0, 25, false}, {"100%", 0, 100, false}, {"0%", 0, 0, true}, {"101%", 0, 0, true},
		{"1024", 1024, 0, false}, {"512M", 512 << 20, 0, false}, {"2GB", 2 << 30, 0, false},
		{"1GiB", 1 << 30, 0, false}, {"1t", 1 << 40, 0, false}, {"0", 0, 0, true}, {"-1G", 0, 0, true},
		{"lots", 0, 0, true}, {"", 0, 0, true}, {"9999999999T", 0, 0, true},
	} {
		b, p, err := ParseStreamSize(c.in)
		if (err != "") != c.bad || b != c.bytes || p != c.percent {
			t.Errorf("%q: got %d, %d%%, %q", c.in, b, p, err)
		}
	}
}

// The stream.* keys take go-choria's types and defaults; bad values name
// file:line and the setting.
func TestStreamKeys(t *testing.T) {
	c, err := Parse("b.conf", []byte("plugin.choria.network.stream.store = /var/lib/choria/streams\nplugin.choria.network.stream.event_retention = 30d\nplugin.choria.network.stream.machine_retention = 1y\nplugin.choria.network.stream.advisory_retention = 3600\nplugin.choria.network.stream.event_replicas = 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Network.Stream
	if s.Store != "/var/lib/choria/streams" || s.EventRetention != 30*24*time.Hour || s.MachineRetention != 365*24*time.Hour ||
		s.AdvisoryRetention != time.Hour || s.EventReplicas != 3 || s.MachineReplicas != -1 || !s.ManageStreams ||
		s.LeaderElectionTTL != time.Minute || s.ExecutorRetention != 24*time.Hour || s.MaxMemory != "25%" {
		t.Errorf("got %+v", s)
	}
	if c.Refused() != nil {
		t.Errorf("stream keys refused: %v", c.Refused())
	}
	for line, want := range map[string]string{
		"plugin.choria.network.stream.event_replicas = 0":        "b.conf:1: plugin.choria.network.stream.event_replicas",
		"plugin.choria.network.stream.max_memory = lots":         "b.conf:1: plugin.choria.network.stream.max_memory",
		"plugin.choria.network.stream.leader_election_ttl = 0":   "must be greater than 0",
		"plugin.choria.network.stream.machine_retention = 3days": "not a duration",
	} {
		if _, err := Parse("b.conf", []byte(line+"\n")); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", line, err, want)
		}
	}
}
