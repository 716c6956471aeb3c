package main

import (
	"errors"
	"fmt"
	"os"
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
restart members of a cluster one at a time without a reconnect storm.
It signals only a running choria-broker broker: a stale pid file, or one
naming another process, is refused.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := positiveDuration("--wait", wait); err != nil {
				return err
			}
			pid, err := readPidFile(pidFile)
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("--pid %s: no such file: is the broker running, and was it started with run --pid %s?", pidFile, pidFile)
			} else if err != nil {
				return fmt.Errorf("--pid: %w", err)
			}
			// On Linux this holds a pidfd: if the process exits and its
			// ID is reused after the check, the signal reaches nobody.
			p, err := os.FindProcess(pid)
			if err != nil {
				return fmt.Errorf("--pid %s: process %d: %w", pidFile, pid, err)
			}
			defer p.Release()
			if err := checkBroker(pid); errors.Is(err, errNotRunning) {
				return fmt.Errorf("--pid %s names process %d, which is not running: the pid file is stale (remove it; no broker was signalled)", pidFile, pid)
			} else if err != nil {
				return fmt.Errorf("--pid %s: %w; not signalled (is the pid file stale?)", pidFile, err)
			}
			if err := p.Signal(syscall.SIGUSR2); errors.Is(err, os.ErrProcessDone) {
				return fmt.Errorf("--pid %s: broker %d exited before it was signalled", pidFile, pid)
			} else if err != nil {
				return fmt.Errorf("signal broker %d: %w (run lameduck as the broker's user or root)", pid, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "broker %d is in lame duck mode; waiting up to %s for it to exit\n", pid, wait)
			deadline := time.Now().Add(wait)
			for p.Signal(syscall.Signal(0)) == nil && !exited(pid) {
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
