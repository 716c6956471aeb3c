package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/choria-broker/choria-broker/internal/fleet"
	"github.com/choria-broker/choria-broker/internal/protocol/filter"
)

func pingCommand() *cobra.Command {
	var ff fleetFlags
	var o fleet.PingOptions
	var facts, classes, agents, identities, compounds []string
	var expectFile string
	var asJSON, silent bool
	cmd := &cobra.Command{
		Use:   "ping",
		Short: "Ping the fleet with a signed Choria discovery request, as `choria ping` does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			creds, err := ff.credentials(false)
			if err != nil {
				return err
			}
			f := filter.New()
			for _, add := range []struct {
				vals []string
				fn   func(string) error
			}{{facts, f.AddFact}, {classes, f.AddClass}, {agents, f.AddAgent}, {identities, f.AddIdentity}, {compounds, f.AddCompound}} {
				for _, v := range add.vals {
					if err := add.fn(v); err != nil {
						return err
					}
				}
			}
			var expected []string
			if expectFile != "" {
				data, err := os.ReadFile(expectFile)
				if err != nil {
					return fmt.Errorf("--expect-file: %w", err)
				}
				for _, l := range strings.Split(string(data), "\n") {
					if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
						expected = append(expected, l)
					}
				}
				if o.Expect == 0 {
					o.Expect = len(expected)
				}
			}
			if o.Expect < 0 {
				return fmt.Errorf("--expect %d: give the number of nodes expected to reply, 0 or more", o.Expect)
			}
			creds.ApplyTo(&o)
			o.GoCurves = ff.goCurves
			o.Filter = f
			res, err := fleet.Ping(cmd.Context(), o)
			if err != nil {
				return err
			}
			return printPing(cmd, res, o, expected, asJSON, silent)
		},
	}
	ff.register(cmd, "client")
	fl := cmd.Flags()
	o.Timeout = 2 * time.Second
	fl.VarP(secondsFlag{&o.Timeout}, "timeout", "t", "how long to collect replies, and to retry a refused connection: seconds (5) or a duration (500ms)")
	fl.IntVar(&o.Expect, "expect", 0, "stop once N nodes replied; exit 1 if fewer did")
	fl.StringVar(&expectFile, "expect-file", "", "file of expected node names, one a line; lists who is missing")
	fl.StringSliceVar(&o.Federations, "federations", nil, "publish through these federation clusters (default: the configuration's plugin.choria.federation.collectives)")
	fl.BoolVar(&o.RPC, "rpc", false, "then send rpcutil ping directly to every responder")
	fl.StringVarP(&o.Collective, "target", "T", "", "collective to ping (default: the first in the configuration)")
	fl.StringArrayVarP(&facts, "wf", "F", nil, "fact filter, e.g. country=de or cpus>=4")
	fl.StringArrayVarP(&classes, "wc", "C", nil, "class filter")
	fl.StringArrayVarP(&agents, "wa", "A", nil, "agent filter")
	fl.StringArrayVarP(&identities, "wi", "I", nil, "identity filter, /regex/ allowed")
	fl.StringArrayVarP(&compounds, "select", "S", nil, "compound filter expression")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	fl.BoolVar(&silent, "silent", false, "print only the summary")
	return cmd
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// errShort is returned when fewer nodes replied than expected.
type errShort struct{ got, want int }

func (e errShort) Error() string {
	return fmt.Sprintf("%d of %d expected nodes replied", e.got, e.want)
}

func printPing(cmd *cobra.Command, res *fleet.PingResult, o fleet.PingOptions, expected []string, asJSON, silent bool) error {
	sum := res.Summarise()
	missing := res.Missing(expected)
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{
			"result": res, "count": sum.Count, "missing": missing,
			"min_ns": sum.Min, "avg_ns": sum.Avg, "p50_ns": sum.P50, "p99_ns": sum.P99, "max_ns": sum.Max,
		}); err != nil {
			return err
		}
	} else {
		if !silent {
			for _, r := range res.Responses {
				line := fmt.Sprintf("%-40s time=%s", r.Name, ms(r.Time))
				if r.StatusCode != nil {
					line += fmt.Sprintf("  rpcutil ping: %d %s", *r.StatusCode, r.StatusMsg)
				}
				fmt.Fprintln(out, line)
			}
			fmt.Fprintln(out)
		}
		fmt.Fprintf(out, "---- ping statistics ----\n%d replies  min: %s  avg: %s  p50: %s  p99: %s  max: %s  elapsed: %s\n",
			sum.Count, ms(sum.Min), ms(sum.Avg), ms(sum.P50), ms(sum.P99), ms(sum.Max), res.Elapsed.Round(time.Millisecond))
		if res.Sends > 1 {
			fmt.Fprintf(out, "request sent %d times while expected nodes were missing; %d answers from nodes that had answered ignored\n", res.Sends, res.Repeats)
		}
		if res.Duplicates+res.Invalid > 0 {
			fmt.Fprintf(out, "%d duplicate and %d invalid replies ignored\n", res.Duplicates, res.Invalid)
		}
		if o.RPC {
			codes := map[int]int{}
			for _, r := range res.Responses {
				if r.StatusCode != nil {
					codes[*r.StatusCode]++
				}
			}
			var parts []string
			for c, n := range codes {
				parts = append(parts, fmt.Sprintf("statuscode %d: %d", c, n))
			}
			sort.Strings(parts)
			fmt.Fprintf(out, "rpcutil ping: %s; no reply: %d\n", strings.Join(parts, ", "), len(res.RPCMissing))
		}
		if len(missing) > 0 {
			fmt.Fprintf(out, "missing (%d): %s\n", len(missing), strings.Join(missing, ", "))
		}
	}
	if o.Expect > 0 && sum.Count < o.Expect {
		return errShort{sum.Count, o.Expect}
	}
	if o.RPC && len(res.RPCMissing) > 0 {
		return fmt.Errorf("%d responders did not answer rpcutil ping", len(res.RPCMissing))
	}
	return nil
}
