package config

import (
	"slices"
	"strings"
)

// support is what the broker does with a key it accepts.
type support uint8

const (
	implemented support = iota
	// refused: a go-choria feature not built yet. Ignoring it would lose
	// data or change who reaches the fleet, so run and preflight stop.
	refused
	// ignored: another Choria program's setting, or an obsolete one;
	// run and preflight warn.
	ignored
)

// Refused features, as README's "Not supported yet" lists them.
const (
	featProvisioning = "provisioning"
	featJWT          = "JWT and anonymous TLS logins"
)

// Why an ignored key is harmless.
const (
	otherProgram = "a setting of the Choria server or client; the broker does not use it"
	obsolete     = "obsolete: go-choria ignores it too (it stopped reading it in 2021); remove it"
	natsLogin    = "a NATS login for Choria servers and clients; the broker's own connections use its certificate"
)

// Unsupported is a setting the files set that this broker accepts but
// does not act on.
type Unsupported struct {
	// Err names file:line and key, says what is missing and what to do.
	// It never shows the value, which may be a password.
	Err *Error
	// Refuse is true when running without the feature would lose data or
	// change who reaches the fleet.
	Refuse bool
}

// Refused joins the settings that must stop a broker; nil when none.
// Only commands that run or vet a broker call it: client and server
// files read by the fleet tools may carry these keys.
func (c *Config) Refused() error {
	var errs []*Error
	for _, u := range c.Unsupported {
		if u.Refuse {
			errs = append(errs, u.Err)
		}
	}
	return joinErrors(errs)
}

// Ignored lists a warning, with file:line, for each harmless setting the
// broker does not use.
func (c *Config) Ignored() []string {
	var out []string
	for _, u := range c.Unsupported {
		if !u.Refuse {
			out = append(out, u.Err.Error())
		}
	}
	return out
}

// lookup finds the setting for key: by name, else the per-name family
// ("plugin.choria.adapter.*") whose prefix key starts with.
func lookup(key string) *setting {
	if s := known[key]; s != nil {
		return s
	}
	for _, s := range families {
		if p := strings.TrimSuffix(s.name, "*"); len(key) > len(p) && strings.HasPrefix(key, p) {
			return s
		}
	}
	return nil
}

// families are the settings whose name ends in ".*", such as go-choria's
// per-remote keys plugin.choria.network.leafnode_remote.NAME.url.
var families = func() []*setting {
	var out []*setting
	for i := range settings {
		if isFamily(settings[i].name) {
			out = append(out, &settings[i])
		}
	}
	return out
}()

func isFamily(name string) bool { return strings.HasSuffix(name, ".*") }

// checkedFamilies are implemented families: the config package accepts
// any key under them, and their reader refuses a property it does not
// know, naming file and line (internal/adapter for adapters, mapping.go
// for subject mappings, gateways.go for gateway remotes, LeafRemotes for
// leafnode remotes).
var checkedFamilies = map[string]bool{"plugin.choria.adapter.*": true, "plugin.choria.network.mapping.*": true, "plugin.choria.network.gateway_remote.*": true,
	"plugin.choria.network.leafnode_remote.*": true}

// noteUnsupported records a set key the broker does not act on; a key
// set twice is reported once, at its last line, as Raw keeps the last value.
func (p *parser) noteUnsupported(file string, line int, key string, s *setting, v any) {
	u := Unsupported{Err: &Error{File: file, Line: line, Key: key}, Refuse: s.support == refused}
	switch {
	case s.support == ignored:
		u.Err.Msg = s.about
	case s.kind == kPortOff && v == 0:
		// go-choria reads port 0 as "off", which is what we do anyway.
		u.Refuse = false
		u.Err.Msg = "0 keeps " + s.about + " off, as in go-choria; " + s.about + " are not supported yet, so the line can go"
	default:
		u.Err.Msg = "not supported yet: " + s.about + "; remove the setting, or keep go-choria's broker where you need " + s.about
	}
	p.c.Unsupported = slices.DeleteFunc(p.c.Unsupported, func(o Unsupported) bool { return o.Err.Key == key })
	p.c.Unsupported = append(p.c.Unsupported, u)
}

// UnsupportedKey describes one table entry that is not implemented.
type UnsupportedKey struct {
	Name   string // a key, or a family such as plugin.choria.adapter.*
	Refuse bool
	About  string // refused: the feature; ignored: why it is harmless
}

// UnsupportedKeys lists, in table order, every key the broker accepts but
// does not implement, for documentation and tests.
func UnsupportedKeys() []UnsupportedKey {
	var out []UnsupportedKey
	for i := range settings {
		if s := &settings[i]; s.support != implemented {
			out = append(out, UnsupportedKey{Name: s.name, Refuse: s.support == refused, About: s.about})
		}
	}
	return out
}
