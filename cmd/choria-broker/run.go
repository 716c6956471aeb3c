package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/limits"
	"github.com/choria-broker/choria-broker/internal/logging"
	"github.com/choria-broker/choria-broker/internal/runner"
)

func runCommand() *cobra.Command {
	var path, pidFile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run what the configuration enables: the network broker, the federation broker, or both",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pidFile != "" {
				release, err := claimPidFile(pidFile)
				if err != nil {
					return err
				}
				defer release()
			}
			return runConfig(cmd.Context(), path)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/choria/broker.conf", "Choria broker configuration file")
	cmd.Flags().StringVar(&pidFile, "pid", "", "write the process ID to this file (for \"choria-broker lameduck\" and init scripts); refused while it names a running broker")
	return cmd
}

// runConfig loads path and runs the broker until SIGINT or SIGTERM; SIGHUP
// reopens the log file, rereads the configuration (runner.Reload says
// what it applies) and reloads certificates and CRL; SIGUSR2 starts lame
// duck mode, after which the broker exits.
func runConfig(parent context.Context, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	// runner.New refuses these too; here it happens before anything else.
	if err := runner.Validate(cfg); err != nil {
		return err
	}
	log, err := logging.New(cfg.LogFile, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer log.Close()
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if cfg.BrokerNetwork {
		// Every client holds a descriptor; leave room for files and listeners.
		if n, err := limits.RaiseNoFile(uint64(cfg.Network.MaxConnections) + 1024); err != nil {
			log.Warn("open-file limit too low for plugin.choria.network.max_connections", "limit", n, "error", err)
		}
	}
	r, err := runner.New(cfg, log.Logger)
	if err != nil {
		return err
	}
	r.Logging = log

	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				if s == syscall.SIGUSR2 {
					r.LameDuck()
				} else {
					r.Reload()
				}
			}
		}
	}()
	return r.Run(ctx)
}
