package runner

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// line sets a key the table names (a family: one of its keys) to a value
// of its type.
func line(t *testing.T, name string) (key, line string) {
	t.Helper()
	key = strings.Replace(name, "*", "east.url", 1)
	for _, v := range []string{"7422", "true", "1h"} {
		if _, err := config.Parse("x.conf", []byte(key+" = "+v)); err == nil {
			return key, key + " = " + v
		}
	}
	t.Fatalf("no sample value fits %s", key)
	return "", ""
}

// Every go-choria feature not built yet stops the broker before anything
// listens, naming the key by file:line.
func TestNewRefusesUnsupported(t *testing.T) {
	t.Parallel()
	for _, k := range config.UnsupportedKeys() {
		if !k.Refuse {
			continue
		}
		key, l := line(t, k.Name)
		cfg, err := config.Parse("broker.conf", []byte("plugin.choria.broker_network = true\n"+l+"\n"))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		log := &testutil.Buffer{}
		r, err := New(cfg, slog.New(slog.NewTextHandler(log, nil)))
		want := "broker.conf:2: " + key + ": not supported yet: " + k.About
		if r != nil || err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: got %v, want %s…", key, err, want)
		}
	}
}

// Harmless keys are logged once each, before anything else happens.
func TestNewWarnsIgnored(t *testing.T) {
	t.Parallel()
	var lines, want []string
	for _, k := range config.UnsupportedKeys() {
		if k.Refuse {
			continue
		}
		key, l := line(t, k.Name)
		lines = append(lines, l)
		want = append(want, "broker.conf:"+strconv.Itoa(len(lines))+": "+key+": ")
	}
	if len(want) < 40 {
		t.Fatalf("only %d ignored keys", len(want))
	}
	cfg, err := config.Parse("broker.conf", []byte(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	log := &testutil.Buffer{}
	// Neither broker enabled: New logs the warnings, then stops.
	if _, err := New(cfg, slog.New(slog.NewTextHandler(log, nil))); err == nil || !strings.HasPrefix(err.Error(), "nothing to run") {
		t.Fatalf("got %v", err)
	}
	for _, w := range want {
		if n := strings.Count(log.String(), w); n != 1 {
			t.Errorf("%q logged %d times", w, n)
		}
	}
	if n := strings.Count(log.String(), "level=WARN"); n != len(want) {
		t.Errorf("%d warnings for %d keys:\n%s", n, len(want), log)
	}
}

// TestNewWarnsUnknown: a key that is neither a setting we know nor a
// likely misspelling is logged at start with its file and line.
func TestNewWarnsUnknown(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("broker.conf", []byte("plugin.example.thing = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	log := &testutil.Buffer{}
	if _, err := New(cfg, slog.New(slog.NewTextHandler(log, nil))); err == nil || !strings.HasPrefix(err.Error(), "nothing to run") {
		t.Fatalf("got %v", err)
	}
	if n := strings.Count(log.String(), "broker.conf:1: plugin.example.thing: unknown setting"); n != 1 {
		t.Fatalf("unknown key logged %d times:\n%s", n, log)
	}
}
