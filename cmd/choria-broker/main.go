// Command choria-broker is the middleware of a Choria fleet: a NATS broker
// that admits only Puppet-CA certificates, and the tools to prove it.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/choria-broker/choria-broker/internal/buildinfo"
)

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "choria-broker:", err)
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "choria-broker",
		Short:         "Choria fleet middleware: a NATS broker secured by the Puppet CA",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(runCommand(), devCommand(), emulateCommand(), pingCommand(), lameDuckCommand(), preflightCommand(), enrollCommand(), versionCommand())
	return root
}

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "choria-broker %s (commit %s, %s)\n", buildinfo.Version(), buildinfo.Commit(), runtime.Version())
			return nil
		},
	}
}
