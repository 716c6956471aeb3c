package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func lameDuckCommand() *cobra.Command {
	var pidFile string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "lameduck",
		Short: "Put a running broker in lame duck mode and wait for it to exit",
		Long: `Sends SIGUSR2 to the broker whose process ID is in --pid: it stops accepting
clients, moves the connected ones off over plugin.choria.network.lame_duck_duration
(in a cluster they reconnect to the other members), then exits. Use it to
restart members of a cluster one at a time without a reconnect storm.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(pidFile)
			if err != nil {
				return fmt.Errorf("--pid: %w (start the broker with run --pid %s)", err, pidFile)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil || pid < 1 {
				return fmt.Errorf("%s: %q is not a process ID", pidFile, strings.TrimSpace(string(data)))
			}
			if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
				return fmt.Errorf("signal broker %d: %w", pid, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broker %d is in lame duck mode; waiting up to %s for it to exit\n", pid, wait)
			deadline := time.Now().Add(wait)
			for syscall.Kill(pid, 0) == nil {
				if time.Now().After(deadline) {
					return fmt.Errorf("broker %d still running after %s", pid, wait)
				}
				time.Sleep(200 * time.Millisecond)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broker %d exited\n", pid)
			return nil
		},
	}
	cmd.Flags().StringVar(&pidFile, "pid", "/run/choria-broker.pid", "the broker's pid file (run --pid)")
	cmd.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long to wait for the broker to exit")
	return cmd
}
