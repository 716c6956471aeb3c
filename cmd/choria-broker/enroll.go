package main

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

func enrollCommand() *cobra.Command {
	var path, caServer, dir, keyType string
	var wait, renewBefore time.Duration
	cmd := &cobra.Command{
		Use:   "enroll",
		Short: "Get the broker its own certificate (ECDSA by default) from the Puppet CA",
		Long: `Makes the broker's key (ECDSA P-256 unless --key-type rsa) and a certificate
request for its identity and the names clients use (the public_url host and
plugin.choria.security.enroll_names), submits it to the Puppet CA, waits for an
operator to sign it (puppetserver ca sign --certname <identity>), and stores
certificate, key, CA chain and CRL where "choria-broker run" with the same
configuration reads them: the plugin.security.file.* paths (provider file), else
plugin.choria.ssldir, else /var/lib/choria-broker/ssl, which the broker searches
before Puppet's ssldir. --dir stores them elsewhere, as a Puppet ssldir. Run
again to renew a certificate close to expiry. An ECDSA broker key halves the broker's CPU per
client handshake against RSA 2048, and saves far more against Puppet's RSA 4096.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := nonNegativeDuration("--wait", wait); err != nil {
				return err
			}
			if err := nonNegativeDuration("--renew-before", renewBefore); err != nil {
				return err
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			host, port := cfg.Security.PuppetCAHost, cfg.Security.PuppetCAPort
			if host == "" {
				host = "puppet" // Choria's default CA host
			}
			if caServer != "" {
				h, p, err := net.SplitHostPort(caServer)
				if err != nil {
					return fmt.Errorf("--ca-server %q: want HOST:PORT", caServer)
				}
				if port, err = strconv.Atoi(p); err != nil || port < 1 || port > 65535 {
					return fmt.Errorf("--ca-server %q: bad port", caServer)
				}
				host = h
			}
			files, ssldir := pki.EnrollTarget(cfg, dir)
			out := cmd.OutOrStdout()
			res, err := pki.Enroll(cmd.Context(), pki.EnrollOptions{
				Dir: ssldir, Files: files, Identity: cfg.Identity, Names: enrollNames(cfg), KeyType: keyType,
				Host: host, Port: port, Wait: wait, RenewBefore: renewBefore,
				Progress: func(msg string) { fmt.Fprintln(out, msg) },
			})
			if err != nil {
				return err
			}
			switch {
			case res.UpToDate:
				fmt.Fprintln(out, "certificate up to date; CA chain and CRL refreshed")
			case res.Renewed:
				fmt.Fprintf(out, "renewed %s (valid until %s)\n", res.Files.Certificate, res.NotAfter.UTC().Format(time.RFC3339))
			default:
				fmt.Fprintf(out, "enrolled: %s key, certificate valid until %s\n", res.KeyType, res.NotAfter.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(out, pki.EnrollAdvice(cfg, files, ssldir))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "/etc/choria/broker.conf", "Choria broker configuration file")
	cmd.Flags().StringVar(&caServer, "ca-server", "", "Puppet CA as HOST:PORT (default plugin.choria.puppetca_host and _port, else puppet:8140)")
	cmd.Flags().StringVar(&dir, "dir", "", "keep the certificate in this Puppet ssldir instead of where run looks (the plugin.security.file.* paths, else plugin.choria.ssldir, else "+config.EnrollSSLDir+")")
	cmd.Flags().StringVar(&keyType, "key-type", "ec", "ec (ECDSA P-256) or rsa (RSA 4096)")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Minute, "how long to wait for an operator to sign (0: check once)")
	cmd.Flags().DurationVar(&renewBefore, "renew-before", 30*24*time.Hour, "renew a certificate expiring within this long")
	return cmd
}

// enrollNames are the names clients and peers reach the broker by.
func enrollNames(cfg *config.Config) []string {
	names := append([]string{}, cfg.Security.EnrollNames...)
	if u := cfg.Network.PublicURL; u != "" {
		if !strings.Contains(u, "://") {
			u = "nats://" + u
		}
		if pu, err := url.Parse(u); err == nil && pu.Hostname() != "" {
			names = append(names, pu.Hostname())
		}
	}
	return names
}
