package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/fleet"
)

// fleetFlags are how the fleet tools find brokers and certificates.
type fleetFlags struct {
	config  string
	dev     bool
	devDir  string
	servers []string
	// goCurves offers Go's default TLS key exchanges instead of go-choria's.
	goCurves bool
}

func (f *fleetFlags) register(cmd *cobra.Command, what string) {
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "Choria "+what+" configuration (plugin.choria.middleware_hosts, security provider)")
	cmd.Flags().BoolVar(&f.dev, "dev", false, "use the development environment that \"choria-broker dev\" made")
	cmd.Flags().StringVar(&f.devDir, "dev-dir", devenv.DefaultDir(), "directory of the development environment")
	cmd.Flags().BoolVar(&f.goCurves, "tls-go-curves", false, "offer Go's default TLS key exchanges (the post-quantum hybrid X25519MLKEM768 first) instead of go-choria's X25519, P-256, P-384, P-521")
	cmd.Flags().StringSliceVarP(&f.servers, "server", "s", nil, "broker URL (repeat or comma-separate for a cluster); overrides the configuration")
}

// credentials loads the configuration named by the flags.
func (f *fleetFlags) credentials(nodes bool) (*fleet.Credentials, error) {
	path := f.config
	switch {
	case f.dev && path != "":
		return nil, fmt.Errorf("give either --dev or --config, not both")
	case f.dev && nodes:
		path = filepath.Join(f.devDir, "server.conf")
	case f.dev:
		path = filepath.Join(f.devDir, "client.conf")
	case path == "":
		return nil, fmt.Errorf("no configuration: give --config FILE, or --dev after running `choria-broker dev`")
	}
	cfg, err := config.Load(path)
	if _, serr := os.Stat(path); err != nil && errors.Is(serr, fs.ErrNotExist) {
		// Name the file looked for and the flag that chose it.
		if f.dev {
			flag, run := "--dev", "choria-broker dev"
			if f.devDir != devenv.DefaultDir() {
				flag, run = "--dev-dir "+f.devDir, run+" --dir "+shellQuote(f.devDir)
			}
			return nil, fmt.Errorf("%s: %s not found: no development environment in %s; run `%s` first, or give --dev-dir the directory it used", flag, path, f.devDir, run)
		}
		return nil, fmt.Errorf("--config %s: file not found; give the path of a Choria configuration, or --dev after running `choria-broker dev`", path)
	}
	if err != nil {
		return nil, err
	}
	c, err := fleet.LoadCredentials(cfg, nodes)
	if err != nil {
		return nil, err
	}
	if len(f.servers) > 0 {
		c.Servers = fleet.ServerURLs(f.servers)
	}
	return c, nil
}
