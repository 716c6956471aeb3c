package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/choria-broker/choria-broker/internal/devenv"
)

func devCommand() *cobra.Command {
	var dir string
	var o devenv.Options
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a development broker on a CA made on the fly",
		Long: `Makes (once, then reuses) a development CA with broker, client and node
certificates and a CRL in a Puppet-style ssldir under --dir, writes a Choria
broker.conf and client.conf there, and runs the broker on 127.0.0.1.
--stats-port 0 turns monitoring off, as plugin.choria.stats_port = 0 does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := portFlag("--client-port", o.ClientPort, ""); err != nil {
				return err
			}
			if err := portFlag("--stats-port", o.StatsPort, "monitoring"); err != nil {
				return err
			}
			o.StatsOff = o.StatsPort == 0
			env, err := devenv.Prepare(dir, o)
			if err != nil {
				return err
			}
			p := env.PKI
			// The fleet tools look in the default directory unless told.
			devFlags := "--dev"
			if def, err := filepath.Abs(devenv.DefaultDir()); err != nil || def != env.Dir {
				devFlags += " --dev-dir " + shellQuote(env.Dir)
			}
			monitor := fmt.Sprintf("curl http://127.0.0.1:%d/varz                # the broker's monitoring", env.StatsPort)
			if env.StatsPort == 0 {
				monitor = "(monitoring is off: --stats-port 0)"
			}
			fmt.Fprintf(cmd.OutOrStdout(), `Development broker in %s
  broker config:  %s
  client config:  %s
  server config:  %s (for emulated nodes)
  CA:             %s
  CRL:            %s (revokes %s)
  client cert:    %s
  node certs:     %s (%d of them)

Next, in other terminals:
  choria-broker emulate %s --nodes 1000    # a fleet of emulated Choria servers
  choria-broker ping %s --expect 1000      # ping it as choria ping does
  %s
Ctrl-C stops the broker.

`, env.Dir, env.BrokerConf, env.ClientConf, env.ServerConf, p.CAFile(), p.CRLFile(), p.Revoked, p.CertFile(p.Client), p.CertFile(p.Nodes[0]), len(p.Nodes), devFlags, devFlags, monitor)
			return runConfig(cmd.Context(), env.BrokerConf)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", devenv.DefaultDir(), "directory for the development CA and configuration")
	cmd.Flags().IntVar(&o.ClientPort, "client-port", 4222, "client port")
	cmd.Flags().IntVar(&o.StatsPort, "stats-port", 8222, "monitoring port on 127.0.0.1 (0: off)")
	return cmd
}

// shellQuote quotes a path for the copy-paste commands dev prints.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+:@%,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
