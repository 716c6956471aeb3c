package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/limits"
)

func emulateCommand() *cobra.Command {
	var ff fleetFlags
	var o fleet.EmulatorOptions
	var collectives, agents []string
	var sharedCerts bool
	cmd := &cobra.Command{
		Use:   "emulate",
		Short: "Run many emulated Choria servers that answer discovery and rpcutil",
		Long: `Runs --nodes Choria servers in one process, each with its own NATS connection,
subscribed exactly as go-choria servers are, verifying every request (unless
--insecure) and answering discovery pings and rpcutil ping, collective_info,
inventory and get_fact. Node certificates come from the configuration's Puppet
ssldir: where it keeps its CA's key (choria-broker dev's does), each node gets a
certificate of its own name; otherwise every node certificate there is shared
round robin. Or from the file provider.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Nodes < 1 {
				return fmt.Errorf("--nodes %d: give the number of nodes to emulate, 1 or more", o.Nodes)
			}
			if o.ConnectConcurrency < 1 {
				return fmt.Errorf("--connect-concurrency %d: give how many first connections may be in flight, 1 or more", o.ConnectConcurrency)
			}
			creds, err := ff.credentials(true)
			if err != nil {
				return err
			}
			base := creds.EmulatorOptions(o.Nodes)
			base.IdentityPattern, base.Insecure, base.ConnectConcurrency = o.IdentityPattern, o.Insecure, o.ConnectConcurrency
			base.GoCurves = ff.goCurves
			if o.Registration < 0 {
				return fmt.Errorf("--registration-interval %v: give how often each node publishes registration, such as 5m, or 0 for never", o.Registration)
			}
			base.Registration = o.Registration
			if sharedCerts {
				base.IssueCA = nil
			}
			o = base
			o.Collectives, o.Agents = collectives, agents
			if len(o.Collectives) == 0 {
				o.Collectives = creds.Collectives
			}
			out := cmd.ErrOrStderr()
			if n, err := limits.RaiseNoFile(uint64(o.Nodes) + 1024); err != nil {
				fmt.Fprintf(out, "warning: %v (%d nodes need %d)\n", err, o.Nodes, o.Nodes+1024)
			} else {
				fmt.Fprintf(out, "open-file limit %d\n", n)
			}
			o.Log = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
			e, err := fleet.NewEmulator(o)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			certs := fmt.Sprintf("%d shared certificates", len(o.Certs))
			if o.IssueCA != nil {
				certs = "a certificate of its own name for each node"
			}
			fmt.Fprintf(out, "emulating %d nodes (%s … %s) in %v against %s with %s\n",
				o.Nodes, e.Identities()[0], e.Identities()[o.Nodes-1], o.Collectives, strings.Join(o.Servers, ","), certs)
			done := make(chan struct{})
			go func() {
				defer close(done)
				report(ctx, out, e)
			}()
			err = e.Run(ctx)
			<-done
			fmt.Fprintln(out, "stopped:", statusLine(e.Stats()))
			return err
		},
	}
	ff.register(cmd, "client or server")
	cmd.Flags().IntVarP(&o.Nodes, "nodes", "n", 100, "number of emulated servers")
	cmd.Flags().StringVar(&o.IdentityPattern, "identity", "emulated-%d.example.net", "identity pattern, with %d for the node number")
	cmd.Flags().StringSliceVar(&collectives, "collectives", nil, "collectives to join (default: the configuration's)")
	cmd.Flags().StringSliceVar(&agents, "agents", nil, "extra emulated agents (action generate) beside discovery and rpcutil")
	cmd.Flags().BoolVar(&o.Insecure, "insecure", false, "do not verify request signatures and certificates")
	cmd.Flags().IntVar(&o.ConnectConcurrency, "connect-concurrency", 100, "first connections in flight at once")
	cmd.Flags().DurationVar(&o.Registration, "registration-interval", 0, "publish each node's registration to <collective>.broadcast.agent.registration this often, as go-choria servers with registration set do (0 = never)")
	cmd.Flags().BoolVar(&sharedCerts, "shared-certificates", false, "share the ssldir's node certificates round robin even when its CA key is there to give each node its own (the broker's node role then refuses each node's direct subject)")
	return cmd
}

// report prints connection progress each second until every node is
// connected (noticed within 100 ms, so connect times are exact enough to
// compare), then a live count whenever it changes, at most once a second,
// except that the whole fleet being back after losing nodes is printed
// within 100 ms too, for timing a reconnect storm.
func report(ctx context.Context, out io.Writer, e *fleet.Emulator) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	lastPrint := start
	last := ""
	allIn := false
	missing := false // a node was seen disconnected since the last line
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := e.Stats()
		if !allIn {
			if s.Connected == s.Nodes {
				allIn = true
				fmt.Fprintf(out, "all %d nodes connected in %s\n", s.Nodes, time.Since(start).Round(10*time.Millisecond))
				lastPrint = time.Now()
			} else if time.Since(lastPrint) >= time.Second {
				fmt.Fprintf(out, "connecting: %d/%d after %s\n", s.Connected, s.Nodes, time.Since(start).Round(time.Second))
				lastPrint = time.Now()
			}
			continue
		}
		missing = missing || s.Connected < s.Nodes
		if time.Since(lastPrint) < time.Second && !(missing && s.Connected == s.Nodes) {
			continue
		}
		missing = s.Connected < s.Nodes
		if line := statusLine(s); line != last {
			fmt.Fprintln(out, line)
			last, lastPrint = line, time.Now()
		}
	}
}

// counts formats counters by name as "a=1 b=2", sorted.
func counts[K ~string](m map[K]uint64) string {
	var out []string
	for k, n := range m {
		out = append(out, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func statusLine(s fleet.Stats) string {
	line := fmt.Sprintf("connected %d/%d reconnects %d received %d replied %d", s.Connected, s.Nodes, s.Reconnects, s.Received, s.Replied)
	if s.PublishError > 0 {
		line += fmt.Sprintf(" publish-errors %d", s.PublishError)
	}
	if d := counts(s.Dropped); d != "" {
		line += " dropped: " + d
	}
	if s.Refused > 0 {
		line += fmt.Sprintf(" refused-by-broker %d", s.Refused)
	}
	if s.Errors > 0 {
		line += fmt.Sprintf(" connection-errors %d", s.Errors)
	}
	line += fmt.Sprintf(" dials %d", s.Dials)
	if f := counts(s.DialFailed); f != "" {
		line += " dial-failed: " + f
	}
	return line
}
