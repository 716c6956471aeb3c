package preflight

import (
	"context"
	"fmt"
	"strings"
)

// unitName is the service the packages install.
const unitName = "choria-broker.service"

// systemd's LimitNOFILE when a unit sets none (systemd ≥ 240).
const (
	systemdSoftNoFile = 1024
	systemdHardNoFile = 524288
)

// unitNoFile: a service does not inherit the shell's ulimit, so the unit's
// LimitNOFILE is what the running broker gets.
type unitNoFile struct{}

func (unitNoFile) Name() string { return "process.unit_nofile" }

func (unitNoFile) Run(_ context.Context, env *Env) []Result {
	path, text, err := env.Sys.Unit(unitName)
	if err != nil {
		return []Result{unreadable(path, err)}
	}
	if path == "" {
		return []Result{{Status: Skip, Found: "no " + unitName + " installed", Wanted: "LimitNOFILE when a unit is installed"}}
	}
	u := parseUnit(string(text))
	want := fdWant(env.Nodes)
	fix := fmt.Sprintf("systemctl edit %s, add [Service] LimitNOFILE=%d, then systemctl restart %s", strings.TrimSuffix(unitName, ".service"), want, strings.TrimSuffix(unitName, ".service"))
	soft, hard, setting := uint64(systemdSoftNoFile), uint64(systemdHardNoFile), "not set (systemd's default 1024:524288)"
	if u.limitSet {
		var ok bool
		soft, hard, ok = parseNoFileValue(u.limit, nrOpenOr(env))
		if !ok {
			return []Result{{Status: Fail, Found: fmt.Sprintf("%s: LimitNOFILE=%s is not a number, soft:hard or infinity", path, u.limit), Wanted: "LimitNOFILE=" + fmt.Sprint(want), Fix: fix}}
		}
		setting = "LimitNOFILE=" + u.limit
	}
	privileged := u.user == "" || u.user == "root" || u.user == "0"
	got := brokerNoFile(soft, hard, privileged, raiseTarget(env), nrOpenOr(env))
	res := Result{
		Item:   path,
		Status: atLeast(int64(got), fdNeed(env.Nodes), want),
		Found:  fmt.Sprintf("%s; the broker starts with %s", setting, count(int64(got))),
		Wanted: fmt.Sprintf("LimitNOFILE ≥ %d", want),
	}
	if res.Status == Pass && !u.limitSet {
		res.Status = Warn // works only because the broker runs as root; say it in the unit
	}
	if res.Status != Pass {
		res.Fix = fix
	}
	return []Result{res}
}

// unit is what preflight reads from a unit file and its drop-ins.
type unit struct {
	limit    string
	limitSet bool
	user     string
}

// parseUnit reads LimitNOFILE and User from [Service]; the last assignment
// wins, and an empty one resets to the default, as systemd does.
func parseUnit(text string) unit {
	var u unit
	section := ""
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = line
			continue
		}
		if section != "[Service]" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "LimitNOFILE":
			u.limit = strings.TrimSpace(v)
			u.limitSet = u.limit != ""
		case "User":
			u.user = strings.TrimSpace(v)
		}
	}
	return u
}

// parseNoFileValue reads N, soft:hard or infinity (which systemd caps at
// fs.nr_open).
func parseNoFileValue(v string, nrOpen uint64) (soft, hard uint64, ok bool) {
	one := func(s string) (uint64, bool) {
		if s == "infinity" {
			return nrOpen, true
		}
		n, err := parseLimit(s)
		return n, err == nil
	}
	s, h, pair := strings.Cut(v, ":")
	soft, ok = one(s)
	if !ok {
		return 0, 0, false
	}
	if !pair {
		return soft, soft, true
	}
	hard, ok = one(h)
	return soft, hard, ok && soft <= hard
}
