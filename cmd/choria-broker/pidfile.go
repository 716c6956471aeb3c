package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// errNotRunning is a pid file naming a process that no longer exists.
var errNotRunning = errors.New("not running")

// readPidFile returns the process ID in a pid file written by run --pid.
func readPidFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	text := strings.TrimSpace(string(data))
	pid, err := strconv.Atoi(text)
	if err != nil || pid < 1 {
		return 0, fmt.Errorf("%s: %q is not a process ID (run --pid writes one number)", path, text)
	}
	return pid, nil
}

// checkBroker says whether pid is a running broker: a choria-broker process
// (our own executable, or one named choria-broker, e.g. after an upgrade
// replaced the file) running "run" or "dev". It returns errNotRunning
// when there is no such process, and an error describing the process when
// it is something else, so that nothing else is signalled.
func checkBroker(pid int) error {
	if !haveProc() {
		// Without /proc (not Linux) the process cannot be identified.
		return nil
	}
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	raw, err := os.ReadFile(filepath.Join(proc, "cmdline"))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return errNotRunning
	}
	if err != nil {
		return fmt.Errorf("cannot tell what process %d is: %w", pid, err)
	}
	if exited(pid) {
		return errNotRunning
	}
	argv := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
	comm, _ := os.ReadFile(filepath.Join(proc, "comm"))
	name := strings.TrimSpace(string(comm))
	if len(raw) == 0 {
		// Zombies and kernel threads have no command line.
		return fmt.Errorf("process %d (%s) is not a choria-broker (it has no command line)", pid, name)
	}
	ours := false
	if self, err := os.Executable(); err == nil {
		a, errA := os.Stat(self)
		b, errB := os.Stat(filepath.Join(proc, "exe"))
		ours = errA == nil && errB == nil && os.SameFile(a, b)
	}
	named := filepath.Base(argv[0]) == "choria-broker" || name == "choria-broker"
	serving := false
	for _, a := range argv[1:] {
		serving = serving || a == "run" || a == "dev"
	}
	if (ours || named) && serving {
		return nil
	}
	line := strings.Join(argv, " ")
	if len(line) > 120 {
		line = line[:117] + "..."
	}
	if ours || named {
		return fmt.Errorf("process %d is %q, a choria-broker that is not a broker (run or dev)", pid, line)
	}
	return fmt.Errorf("process %d is %q, not a choria-broker", pid, line)
}

// exited says whether pid has exited and waits for its parent to reap it
// (a zombie): it is gone, although signals to it still succeed.
func exited(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return haveProc() && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH))
	}
	for _, line := range strings.Split(string(data), "\n") {
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			state = strings.TrimSpace(state)
			return strings.HasPrefix(state, "Z") || strings.HasPrefix(state, "X")
		}
	}
	return false
}

func haveProc() bool {
	_, err := os.Stat("/proc/self/status")
	return err == nil
}

// claimPidFile writes our process ID to path unless it names a broker that
// is still running, and returns a function that removes the file only while
// it still holds our ID: a second broker that fails to start (port in use)
// must not delete the running one's file.
func claimPidFile(path string) (release func(), err error) {
	if pid, err := readPidFile(path); err == nil && pid != os.Getpid() {
		if checkBroker(pid) == nil {
			return nil, fmt.Errorf("--pid %s: choria-broker is already running as pid %d; stop it first (choria-broker lameduck --pid %s), or give another --pid", path, pid, path)
		}
		// A stale file (the process is gone or is something else now) is replaced.
	}
	own := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(path, []byte(own+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("--pid %s: %w", path, err)
	}
	return func() {
		if data, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(data)) == own {
			os.Remove(path)
		}
	}, nil
}
