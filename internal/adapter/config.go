// Package adapter runs go-choria's protocol adapters inside the broker:
// each takes Choria requests or replies from a subject and republishes
// their bodies as JSON, typically into a Choria Streams stream.
package adapter

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/choria-broker/choria-broker/internal/config"
)

// Spec is one adapter's settings, plugin.choria.adapter.NAME.*.
type Spec struct {
	Name           string
	Type           string // choria_streams (jetstream is its alias)
	QueueLen       int    // work queue between ingest and output
	IngestTopic    string
	IngestProtocol string // request or reply
	IngestWorkers  int
	StreamTopic    string // %s is the sender's identity
	StreamWorkers  int
	StreamServers  []string // read for go-choria's sake; in-process connections ignore it
}

// Specs reads every adapter named by plugin.choria.adapters, with
// go-choria's defaults; every bad setting is reported with its file:line.
func Specs(cfg *config.Config) ([]Spec, error) {
	names := config.SplitList(cfg.Raw["plugin.choria.adapters"])
	var specs []Spec
	var errs []error
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		s, err := spec(cfg, name)
		errs = append(errs, err...)
		specs = append(specs, s)
	}
	errs = append(errs, unknownKeys(cfg, seen)...)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return specs, nil
}

// properties are the per-adapter keys, plugin.choria.adapter.NAME.<property>.
var properties = map[string]bool{
	"type": true, "queue_len": true, "ingest.topic": true, "ingest.protocol": true,
	"ingest.workers": true, "stream.topic": true, "stream.workers": true, "stream.servers": true,
}

// unknownKeys refuses adapter settings that nothing would read: the
// config package accepts the whole plugin.choria.adapter.* family and
// leaves the properties to us, so a misspelt one must not pass silently.
func unknownKeys(cfg *config.Config, listed map[string]bool) []error {
	const prefix = "plugin.choria.adapter."
	var keys []string
	for k := range cfg.Raw {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		name, prop, _ := strings.Cut(strings.TrimPrefix(k, prefix), ".")
		switch {
		case !listed[name]:
			errs = append(errs, fmt.Errorf("%s%s: adapter %q is not in plugin.choria.adapters, so this setting would be ignored; add %s to plugin.choria.adapters or remove its settings", where(cfg, k, ""), k, name, name))
		case !properties[prop]:
			errs = append(errs, fmt.Errorf("%s%s: unknown adapter setting %q; an adapter has type, queue_len, ingest.topic, ingest.protocol, ingest.workers, stream.topic, stream.workers and stream.servers", where(cfg, k, ""), k, prop))
		}
	}
	return errs
}

func spec(cfg *config.Config, name string) (Spec, []error) {
	p := "plugin.choria.adapter." + name + "."
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s%s: %s", where(cfg, p+key, "plugin.choria.adapters"), p+key, fmt.Sprintf(format, a...)))
	}
	get := func(key, def string) string {
		if v, ok := cfg.Raw[p+key]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	num := func(key string, def int) int {
		v := get(key, strconv.Itoa(def))
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100_000 {
			bad(key, "%q is not a whole number from 1 to 100000", v)
			return def
		}
		return n
	}
	s := Spec{Name: name}
	switch t := get("type", ""); t {
	case "choria_streams", "jetstream":
		s.Type = "choria_streams"
	case "":
		bad("type", "missing: adapter %q is listed in plugin.choria.adapters but has no type; set it to choria_streams", name)
	case "nats_stream":
		bad("type", "nats_stream is deprecated (NATS Streaming is gone); use choria_streams and a Choria Streams stream")
	default:
		bad("type", "unknown Protocol Adapter type %q; the broker has choria_streams (alias jetstream)", t)
	}
	s.QueueLen = num("queue_len", 1000)
	s.IngestTopic = get("ingest.topic", "")
	if s.IngestTopic == "" {
		bad("ingest.topic", "missing: set the subject to take messages from, such as mcollective.broadcast.agent.registration")
	}
	// go-choria reads anything but "request" as reply; a typo would then
	// drop every request silently, so only the two words are accepted.
	switch s.IngestProtocol = get("ingest.protocol", "reply"); s.IngestProtocol {
	case "request", "reply":
	default:
		bad("ingest.protocol", "%q is not request or reply", s.IngestProtocol)
	}
	s.IngestWorkers = num("ingest.workers", 10)
	s.StreamTopic = get("stream.topic", name)
	if strings.Count(s.StreamTopic, "%s") > 1 || strings.ContainsAny(strings.ReplaceAll(s.StreamTopic, "%s", "x"), " \t*>") {
		bad("stream.topic", "%q is not a subject to publish to: no spaces or wildcards, and %%s (the sender) at most once", s.StreamTopic)
	}
	s.StreamWorkers = num("stream.workers", 10)
	s.StreamServers = config.SplitList(get("stream.servers", ""))
	return s, errs
}

// where is "file:line: " of key, else of fallback, else "".
func where(cfg *config.Config, key, fallback string) string {
	if w := cfg.Where(key); w != "" {
		return w + ": "
	}
	if w := cfg.Where(fallback); w != "" {
		return w + ": "
	}
	return ""
}
