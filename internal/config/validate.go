package config

import "strings"

// rule is a check that spans settings.
type rule struct {
	// keys the rule reads; it is skipped when one of them failed to parse,
	// since the value it would see is a default, not what the user wrote.
	keys  []string
	check func(c *Config) []*Error
}

var rules = []rule{
	{keys: []string{"collectives", "main_collective"}, check: mainCollectiveKnown},
	{keys: []string{"plugin.security.provider", "plugin.security.file.certificate", "plugin.security.file.key", "plugin.security.file.ca"}, check: fileProviderPaths},
	{keys: []string{"plugin.choria.network.system.user", "plugin.choria.network.system.password"}, check: systemLogin},
	{keys: []string{"plugin.choria.network.websocket_port", "plugin.choria.network.websocket_advertise"}, check: websocketAdvertise},
	{keys: []string{"plugin.choria.network.websocket_port", "plugin.choria.network.client_port", "plugin.choria.stats_port", "plugin.choria.stats_address",
		"plugin.choria.network.pprof_port", "plugin.choria.network.peer_port", "plugin.choria.network.listen_address", "plugin.choria.network.peers"}, check: websocketPort},
	{keys: []string{"plugin.choria.network.gateway_port", "plugin.choria.network.gateway_remotes", "plugin.choria.network.gateway_name"}, check: gatewaySettings},
}

// Validate checks every known setting's value, including values set by
// code after parsing, and the rules that span settings. It returns all
// problems joined; each is a *Error.
func (c *Config) Validate() error {
	return joinErrors(c.validate(nil))
}

// validate skips settings in failed (already reported with their line)
// and rules that read a failed or invalid setting.
func (c *Config) validate(failed map[string]bool) []*Error {
	var errs []*Error
	bad := map[string]bool{}
	for k := range failed {
		bad[k] = true
	}
	for i := range settings {
		s := &settings[i]
		if s.field == nil || bad[s.name] {
			continue
		}
		v := s.get(c)
		if msg := s.verify(v); msg != "" {
			errs = append(errs, &Error{File: c.File, Key: s.name, Value: show(v), Msg: msg})
			bad[s.name] = true
		}
	}
	for _, r := range rules {
		if anySkipped(r.keys, bad) {
			continue
		}
		for _, e := range r.check(c) {
			if e.File == "" {
				e.File = c.File
			}
			errs = append(errs, e)
		}
	}
	return errs
}

func anySkipped(keys []string, skip map[string]bool) bool {
	for _, k := range keys {
		if skip[k] {
			return true
		}
	}
	return false
}

// mainCollectiveKnown: clients publish to main_collective, so a broker
// fleet tool would talk to a collective no server subscribes to.
func mainCollectiveKnown(c *Config) []*Error {
	for _, n := range c.Collectives {
		if n == c.MainCollective {
			return nil
		}
	}
	return []*Error{{Key: "main_collective",
		Msg: `"` + c.MainCollective + `" is not one of collectives (` + strings.Join(c.Collectives, ", ") + `); add it to collectives or pick one of those`}}
}

// fileProviderPaths: the file provider has no ssldir to fall back on.
func fileProviderPaths(c *Config) []*Error {
	if c.Security.Provider != "file" {
		return nil
	}
	var errs []*Error
	for _, f := range []struct{ key, val string }{
		{"plugin.security.file.certificate", c.Security.FileCertificate},
		{"plugin.security.file.key", c.Security.FileKey},
		{"plugin.security.file.ca", c.Security.FileCA},
	} {
		if f.val == "" {
			errs = append(errs, &Error{Key: f.key,
				Msg: "required when plugin.security.provider = file; set it, or use plugin.security.provider = puppet"})
		}
	}
	return errs
}

// systemLogin: half a system login would refuse every system login
// silently; the error points at the line that is set.
func systemLogin(c *Config) []*Error {
	user, pass := c.Network.SystemUser != "", c.Network.SystemPassword != ""
	if user == pass {
		return nil
	}
	set, missing := "plugin.choria.network.system.user", "plugin.choria.network.system.password"
	if pass {
		set, missing = missing, set
	}
	return []*Error{c.KeyError(set, "set without "+missing+"; set both to allow system account logins, or neither")}
}
