package preflight

import (
	"context"
	"fmt"
)

// synCookies: with cookies on (1), a SYN queue that overflows in a storm
// still completes connections instead of dropping SYNs; 2 sends cookies
// always, which loses TCP options on every connection.
type synCookiesCheck struct{}

func synCookies() Check { return synCookiesCheck{} }

func (synCookiesCheck) Name() string { return "kernel.tcp_syncookies" }

func (synCookiesCheck) Run(_ context.Context, env *Env) []Result {
	const key = "net.ipv4.tcp_syncookies"
	v, err := env.Sys.Sysctl(key)
	if err != nil {
		return []Result{unreadable(key, err)}
	}
	res := Result{Status: Pass, Found: fmt.Sprintf("%s = %d", key, v), Wanted: "1 (cookies when the SYN queue overflows)"}
	switch v {
	case 1:
		return []Result{res}
	case 0:
		res.Status = Fail
		res.Fix = "sysctl -w " + key + "=1, persisted in /etc/sysctl.d (--write-sysctl); without cookies SYNs beyond the backlog are dropped in a restart storm"
	default:
		res.Status = Warn
		res.Fix = "sysctl -w " + key + "=1, persisted in /etc/sysctl.d (--write-sysctl); 2 sends cookies on every connection, even without a flood"
	}
	res.Sysctl = key + " = 1"
	return []Result{res}
}
