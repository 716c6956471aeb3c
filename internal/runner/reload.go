package runner

import (
	"slices"

	"github.com/choria-broker/choria-broker/internal/broker"
	"github.com/choria-broker/choria-broker/internal/config"
)

// reloadConfig rereads the configuration and applies what it can: the
// log level and file, and the settings roles are decided from. Every
// other change is logged as needing a restart, on every reload until
// then, since the running broker still uses the old value.
func (r *Runner) reloadConfig() {
	next, err := config.Load(r.cfg.File)
	if err != nil {
		r.log.Error("SIGHUP: configuration not reloaded, every setting stays as it is; fix the file and send SIGHUP again", "error", err)
		return
	}
	for _, w := range next.Warnings {
		r.log.Warn("SIGHUP: " + w)
	}
	if err := Validate(next); err != nil {
		r.log.Error("SIGHUP: the next start will refuse this configuration", "error", err)
	}
	var roles []config.Change
	for _, ch := range config.Diff(r.cfg, next) {
		attrs := []any{"key", ch.Key, "old", ch.Old, "new", ch.New, "where", ch.Where}
		switch {
		case ch.Key == "loglevel" && r.Logging != nil:
			if err := r.Logging.SetLevel(next.LogLevel); err != nil {
				r.log.Error("SIGHUP: log level not changed", append(attrs, "error", err)...)
				continue
			}
			r.log.Info("SIGHUP: setting applied", attrs...)
		case ch.Key == "logfile" && r.Logging != nil:
			// Said in the old file, so whoever reads it knows where to look.
			r.log.Info("SIGHUP: setting applied, logging continues in the new file", attrs...)
			if err := r.Logging.SetFile(next.LogFile); err != nil {
				r.log.Error("SIGHUP: log file not changed, logging stays here", append(attrs, "error", err)...)
				continue
			}
			r.log.Info("SIGHUP: setting applied", attrs...)
		case r.Network != nil && slices.Contains(broker.RoleKeys, ch.Key):
			roles = append(roles, ch)
			continue // adopted below, all together
		default:
			r.log.Warn("SIGHUP: setting changed but needs a restart; the running broker keeps the old value", attrs...)
			continue
		}
		r.cfg.Adopt(next, ch.Key)
	}
	if len(roles) == 0 {
		return
	}
	if err := r.Network.SetRoles(next); err != nil {
		r.log.Error("SIGHUP: roles not changed", "error", err)
		return
	}
	for _, ch := range roles {
		r.log.Info("SIGHUP: setting applied to new connections; connected clients keep the role they were given until they reconnect",
			"key", ch.Key, "old", ch.Old, "new", ch.New, "where", ch.Where)
		r.cfg.Adopt(next, ch.Key)
	}
}
