package preflight

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// System is every value preflight reads from the host. Host reads the real
// one, or fixture files under a root directory in tests.
type System interface {
	// Sysctl reads /proc/sys/<key with dots as slashes>.
	Sysctl(key string) (int64, error)
	// NoFile is this process's open-file limit, soft and hard.
	NoFile() (soft, hard uint64, err error)
	// Privileged reports whether this process may raise its hard limits (root).
	Privileged() bool
	// MemAvailable is MemAvailable of /proc/meminfo, in bytes.
	MemAvailable() (uint64, error)
	// Unit is an installed systemd unit file, its drop-ins appended;
	// path is "" when none is installed.
	Unit(name string) (path string, text []byte, err error)
	// Bind listens on addr and closes at once: nil when the port is free.
	Bind(addr string) error
	// PortOwner names the process listening on a TCP port, when visible.
	PortOwner(port int) (Process, error)
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) ([]*net.SRV, error)
	// LocalIP reports whether ip is an address of this host.
	LocalIP(ip net.IP) bool
	CPUs() int
}

// Process is a running program.
type Process struct {
	PID  int
	Name string // /proc/<pid>/comm
}

// Resolver is the part of *net.Resolver preflight uses; tests inject one so
// that no query reaches a real DNS server.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
}

// Host is the System of this machine: files under Root ("/" when empty),
// real sockets, and Resolver (net.DefaultResolver when nil).
type Host struct {
	Root     string
	Resolver Resolver
}

func (h Host) path(p string) string {
	if h.Root == "" {
		return p
	}
	return filepath.Join(h.Root, p)
}

func (h Host) read(p string) ([]byte, error) { return os.ReadFile(h.path(p)) }

// Sysctl implements System.
func (h Host) Sysctl(key string) (int64, error) {
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	data, err := h.read(p)
	if err != nil {
		return 0, err
	}
	// Some keys hold several numbers; the first is the limit.
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, fmt.Errorf("%s is empty", p)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// NoFile implements System from /proc/self/limits, so fixtures can set it.
func (h Host) NoFile() (uint64, uint64, error) {
	data, err := h.read("/proc/self/limits")
	if err != nil {
		return 0, 0, err
	}
	return parseLimits(data, "Max open files")
}

// parseLimits finds a row of /proc/<pid>/limits: name, soft, hard, units.
func parseLimits(data []byte, name string) (uint64, uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, name))
		if len(f) < 2 {
			break
		}
		soft, err1 := parseLimit(f[0])
		hard, err2 := parseLimit(f[1])
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, err
		}
		return soft, hard, nil
	}
	return 0, 0, fmt.Errorf("no %q row in limits", name)
}

func parseLimit(s string) (uint64, error) {
	if s == "unlimited" || s == "infinity" {
		return unlimited, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// unlimited stands for RLIM_INFINITY.
const unlimited = ^uint64(0)

// Privileged implements System from /proc/self/status (effective uid 0).
func (h Host) Privileged() bool {
	data, err := h.read("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "Uid:" {
			return f[2] == "0"
		}
	}
	return false
}

// MemAvailable implements System.
func (h Host) MemAvailable() (uint64, error) {
	data, err := h.read("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no MemAvailable in /proc/meminfo (kernel older than 3.14?)")
}

// Unit implements System: /etc/systemd/system overrides /lib/systemd/system,
// and drop-ins in /etc/systemd/system/<name>.d/*.conf come after.
func (h Host) Unit(name string) (string, []byte, error) {
	var path string
	var text []byte
	for _, dir := range []string{"/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"} {
		p := dir + "/" + name
		data, err := h.read(p)
		if err == nil {
			path, text = p, data
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return p, nil, err
		}
	}
	if path == "" {
		return "", nil, nil
	}
	dropins, _ := filepath.Glob(h.path("/etc/systemd/system/" + name + ".d/*.conf"))
	for _, d := range dropins {
		data, err := os.ReadFile(d)
		if err != nil {
			return d, nil, err
		}
		text = append(append(text, '\n'), data...)
	}
	return path, text, nil
}

// Bind implements System.
func (Host) Bind(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// PortOwner implements System: the socket inode listening on port, from
// /proc/net/tcp{,6}, then the process holding that inode. Other users'
// processes are invisible without root.
func (h Host) PortOwner(port int) (Process, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := h.read(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			// sl local_address rem_address st ... inode (10th field)
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" {
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			p, err := strconv.ParseUint(fs[1][i+1:], 16, 16)
			if err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return Process{}, errors.New("no listening socket found in /proc/net")
	}
	procs, err := os.ReadDir(h.path("/proc"))
	if err != nil {
		return Process{}, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := h.path(fmt.Sprintf("/proc/%d/fd", pid))
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err == nil && inodes[target] {
				comm, _ := h.read(fmt.Sprintf("/proc/%d/comm", pid))
				return Process{PID: pid, Name: strings.TrimSpace(string(comm))}, nil
			}
		}
	}
	return Process{}, errors.New("the listening process is not visible (run preflight as root to name it)")
}

// dialTimeout bounds every connection attempt to a peer or port.
const dialTimeout = 3 * time.Second

// Dial implements System.
func (Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	return d.DialContext(ctx, network, addr)
}

func (h Host) resolver() Resolver {
	if h.Resolver == nil {
		return net.DefaultResolver
	}
	return h.Resolver
}

// LookupHost implements System.
func (h Host) LookupHost(ctx context.Context, host string) ([]string, error) {
	return h.resolver().LookupHost(ctx, host)
}

// LookupSRV implements System.
func (h Host) LookupSRV(ctx context.Context, service, proto, name string) ([]*net.SRV, error) {
	_, srvs, err := h.resolver().LookupSRV(ctx, service, proto, name)
	return srvs, err
}

// LocalIP implements System.
func (Host) LocalIP(ip net.IP) bool {
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// CPUs implements System.
func (Host) CPUs() int { return runtime.NumCPU() }
