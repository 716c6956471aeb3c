package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spf13/cobra"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
	"github.com/choria-broker/choria-broker/internal/preflight"
)

// maxNodes bounds preflight --nodes: far more than one broker holds, and
// small enough that no estimate overflows.
const maxNodes = 10_000_000

// errChecksFailed makes preflight exit 1 after the report has been printed.
var errChecksFailed = errors.New("preflight: some checks failed")

func preflightCommand() *cobra.Command {
	var (
		path        string
		nodes       int
		asJSON      bool
		sysctlFile  string
		measureTime time.Duration
	)
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Check this host, the configuration, certificates and cluster before a large fleet connects",
		Long: `Runs every check for the configuration and fleet size: kernel queues and
file limits, the open-file limit and memory for --nodes, certificate, key, CA
and CRL, names and expiry, the handshake rate of the broker's key, ports,
cluster peers, a federation broker's role on the network brokers and
contradicting settings. Each prints pass, warn, fail or skip with what was
found, what is wanted and the fix. It changes nothing; --write-sysctl writes
a sysctl.d file for the operator to install.
Exits 1 when a check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("nodes") {
				if err := intRange("--nodes", nodes, 1, maxNodes); err != nil {
					return err
				}
			}
			if err := positiveDuration("--measure", measureTime); err != nil {
				return err
			}
			if measureTime > time.Minute {
				return fmt.Errorf("--measure %s: at most 1m", measureTime)
			}
			var rep *preflight.Report
			cfg, err := config.Load(path)
			if err != nil {
				rep = preflight.LoadFailed(path, nodes, err)
			} else {
				if !cmd.Flags().Changed("nodes") {
					nodes = cfg.Network.MaxConnections
				}
				env := &preflight.Env{Config: cfg, Nodes: nodes, Sys: preflight.Host{}, Now: time.Now(), Measure: measureTime}
				rep = preflight.Default().Run(cmd.Context(), env)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				err = rep.WriteJSON(out)
			} else {
				err = rep.WriteText(out, textWidth(out))
			}
			if err != nil {
				return err
			}
			if sysctlFile != "" {
				if err := pki.WriteFile(sysctlFile, rep.SysctlFile(time.Now()), 0o644); err != nil {
					return err
				}
				if !asJSON {
					fmt.Fprintf(out, "wrote %s: install it with cp %s /etc/sysctl.d/60-choria-broker.conf && sysctl --system\n", sysctlFile, sysctlFile)
				}
			}
			if rep.Failed {
				return errChecksFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/choria/broker.conf", "Choria broker configuration file")
	cmd.Flags().IntVar(&nodes, "nodes", 0, "nodes the broker must hold (default: plugin.choria.network.max_connections)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().StringVar(&sysctlFile, "write-sysctl", "", "write the kernel settings that did not pass to this sysctl.d file")
	cmd.Flags().DurationVar(&measureTime, "measure", 200*time.Millisecond, "how long to time the broker key's signatures")
	return cmd
}

// textWidth is the terminal's width when out is one, else $COLUMNS, else
// 100 columns.
func textWidth(out io.Writer) int {
	if f, ok := out.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 100
}
