// Package harness runs the processes a benchmark compares: brokers, an
// emulated fleet, ping clients; and reads what they cost from /proc.
package harness

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// Build compiles choria-broker into dir, unless bin is given.
func Build(dir, bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	bin = filepath.Join(dir, "choria-broker")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/choria-broker")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build choria-broker (run from the repository root): %w", err)
	}
	return bin, nil
}

// Line is one line of a process's output and when it was read.
type Line struct {
	At   time.Time
	Text string
}

// Proc is a started process with its output in a log file; OnLine, when
// set before Start returns, sees every line as it arrives.
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	obs  []func(Line)
}

// Start runs name with args in its own process group, output to logFile.
func Start(logFile, name string, args ...string) (*Proc, error) {
	f, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			l := Line{At: time.Now(), Text: sc.Text()}
			fmt.Fprintln(f, l.Text)
			p.mu.Lock()
			obs := slices.Clone(p.obs)
			p.mu.Unlock()
			for _, o := range obs {
				o(l)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		<-read
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Watch calls fn for every later line.
func (p *Proc) Watch(fn func(Line)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.obs = append(p.obs, fn)
}

// WaitLine waits for a line containing text.
func (p *Proc) WaitLine(text string, limit time.Duration) (time.Time, error) {
	found := make(chan time.Time, 1)
	p.Watch(func(l Line) {
		if strings.Contains(l.Text, text) {
			select {
			case found <- l.At:
			default:
			}
		}
	})
	select {
	case at := <-found:
		return at, nil
	case <-p.done:
		return time.Time{}, fmt.Errorf("process exited before %q", text)
	case <-time.After(limit):
		return time.Time{}, fmt.Errorf("no %q within %s", text, limit)
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) { _ = syscall.Kill(p.Cmd.Process.Pid, sig) }

// Stop sends SIGTERM to the process group and waits, then SIGKILL.
func (p *Proc) Stop() {
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Usage is what a process holds and has spent.
type Usage struct {
	RSSKiB int64
	CPU    time.Duration // user + system
}

// Usage reads the process's RSS and CPU time from /proc.
func (p *Proc) Usage() Usage {
	var u Usage
	pid := p.Cmd.Process.Pid
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				u.RSSKiB, _ = strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			}
		}
	}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(data)
		if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) {
			f := strings.Fields(s[i+2:])
			if len(f) > 12 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				u.CPU = time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
			}
		}
	}
	return u
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitPort waits until addr accepts TCP connections.
func WaitPort(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New(addr + " did not open in time")
}

// Median of durations; 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Cores is the machine's processor count, for the report.
func Cores() int {
	data, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(data), "processor\t:")
}

// PingResult is what `choria-broker ping --json` prints.
type PingResult struct {
	Count  int           `json:"count"`
	P50    time.Duration `json:"p50_ns"`
	P99    time.Duration `json:"p99_ns"`
	Result struct {
		Elapsed   time.Duration `json:"elapsed_ns"`
		Responses []struct {
			StatusCode *int `json:"statuscode"`
		} `json:"responses"`
	} `json:"result"`
}

// OK counts the RPC replies with status 0 (an --rpc ping).
func (r *PingResult) OK() int {
	n := 0
	for _, x := range r.Result.Responses {
		if x.StatusCode != nil && *x.StatusCode == 0 {
			n++
		}
	}
	return n
}

// Ping runs `bin ping args... --json`. A ping that misses replies exits
// non-zero but still prints its result, which is returned.
func Ping(bin string, args ...string) (*PingResult, error) {
	out, err := exec.Command(bin, append(append([]string{"ping"}, args...), "--json")...).Output()
	if len(out) == 0 {
		return nil, fmt.Errorf("ping: %v", err)
	}
	var r PingResult
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("ping output: %w", err)
	}
	return &r, nil
}

// IssueCert writes a certificate and key for name, signed by the
// development CA, valid for localhost and 127.0.0.1 as well.
func IssueCert(dir string, env *devenv.Env, name string) (certFile, keyFile string, err error) {
	kp, err := env.PKI.CA.Issue(pki.IssueOptions{Name: name, DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	return certFile, keyFile, kp.Save(certFile, keyFile)
}
