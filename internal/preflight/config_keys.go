package preflight

import "context"

// configKeys: a misspelt key is silently a default, and a go-choria
// feature this broker lacks would be silently missing; config.Load already
// names file, line and the likely key.
type configKeys struct{}

func (configKeys) Name() string { return "config.keys" }

const keysWanted = "only settings this broker implements"

func (configKeys) Run(_ context.Context, env *Env) []Result {
	c := env.Config
	var out []Result
	for _, u := range c.Unsupported {
		if u.Refuse {
			out = append(out, Result{Item: u.Err.Key, Status: Fail, Found: u.Err.Error(), Wanted: keysWanted,
				Fix: "remove the setting, or keep go-choria's broker on the hosts that need the feature; run refuses it too"})
		}
	}
	for _, w := range c.Warnings {
		out = append(out, Result{Status: Warn, Found: w, Wanted: "no unknown or misspelt keys", Fix: "rename or remove the key as suggested"})
	}
	for _, u := range c.Unsupported {
		if !u.Refuse {
			out = append(out, Result{Item: u.Err.Key, Status: Warn, Found: u.Err.Error(), Wanted: keysWanted, Fix: "remove the line; the broker ignores it"})
		}
	}
	for _, w := range c.Unknown {
		out = append(out, Result{Status: Warn, Found: w, Wanted: "no unknown keys", Fix: "remove the line unless a plugin of yours reads it"})
	}
	if len(out) == 0 {
		return []Result{{Status: Pass, Found: "every key known", Wanted: "no unknown or misspelt keys"}}
	}
	return out
}
