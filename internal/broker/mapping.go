package broker

import (
	"errors"
	"fmt"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/choria-broker/choria-broker/internal/config"
)

// Subject mappings (plugin.choria.network.mapping.*) are added to the
// global account, where every client and node connection is, as go-choria
// adds them to its choria account. The engine maps a published subject
// before it checks the publisher's permissions, so a role must be allowed
// the destination and a mapping grants no role a subject it lacks.

// checkMappings refuses what the engine would refuse, by its own code on a
// scratch account, with the file:line of the key: go-choria logs a bad
// mapping and starts without it.
func checkMappings(cfg *config.Config) error {
	var errs []error
	for _, m := range cfg.Network.Mappings {
		src, dst := config.MappingKey(m.Name, "source"), config.MappingKey(m.Name, "destination")
		switch {
		case m.Source == "":
			errs = append(errs, cfg.KeyError(src, "missing: the subject to map from"))
		case m.Destination == "":
			errs = append(errs, cfg.KeyError(dst, "missing: the subject to map to"))
		case !server.IsValidSubject(m.Source):
			errs = append(errs, cfg.KeyError(src, fmt.Sprintf("%q is not a subject: tokens separated by dots, * for one token, > for the rest, no spaces", m.Source)))
		default:
			if err := server.NewAccount("check").AddMapping(m.Source, m.Destination); err != nil {
				hint := "; the functions are NATS's: {{wildcard(n)}}, {{partition(n,i...)}}, {{split(i,s)}}, ..."
				if errors.Is(err, server.ErrBadSubject) {
					hint = "; the destination has no * (use {{wildcard(n)}} for the source's n-th *), and ends in > exactly when the source does"
				}
				errs = append(errs, cfg.KeyError(dst, fmt.Sprintf("the engine refuses %q as the destination of %q: %v%s", m.Destination, m.Source, err, hint)))
			}
		}
	}
	return errors.Join(errs...)
}

// applyMappings adds the mappings to the engine's global account before
// it starts, so no connection ever sees the account without them.
func (b *Broker) applyMappings(srv *server.Server) error {
	acc := srv.GlobalAccount()
	for _, m := range b.cfg.Network.Mappings {
		if err := acc.AddMapping(m.Source, m.Destination); err != nil {
			return b.cfg.KeyError(config.MappingKey(m.Name, "destination"), err.Error()) // checkMappings ran: not expected
		}
		b.log.Info("subject mapping", "name", m.Name, "source", m.Source, "destination", m.Destination)
	}
	return nil
}
