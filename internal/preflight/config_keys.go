package preflight

import "context"

// configKeys: a misspelt key is silently a default; config.Load already
// names the likely key.
type configKeys struct{}

func (configKeys) Name() string { return "config.keys" }

func (configKeys) Run(_ context.Context, env *Env) []Result {
	if len(env.Config.Warnings) == 0 {
		return []Result{{Status: Pass, Found: "every key known", Wanted: "no unknown or misspelt keys"}}
	}
	var out []Result
	for _, w := range env.Config.Warnings {
		out = append(out, Result{Status: Warn, Found: w, Wanted: "no unknown or misspelt keys", Fix: "rename or remove the key as suggested"})
	}
	return out
}
