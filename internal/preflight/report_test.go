package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// The whole registry on the low fixture host: every check reports, the
// kernel fixes land in the sysctl file, and the JSON is what the README says.
func TestReportLowHost(t *testing.T) {
	t.Parallel()
	s := newSSL(t, sslOptions{})
	env := s.env(t, "plugin.choria.network.listen_address = 127.0.0.1", fmt.Sprintf("plugin.choria.network.client_port = %d", testutil.FreePort(t)), "plugin.choria.stats_port = 0")
	env.Sys = Host{Root: "testdata/hosts/low", Resolver: noDNS{}}
	rep := Default().Run(context.Background(), env)

	seen := map[string]bool{}
	for _, r := range rep.Results {
		seen[r.Check] = true
	}
	for _, name := range Default().Names() {
		if !seen[name] {
			t.Errorf("no result from %s", name)
		}
	}
	if !rep.Failed || rep.Summary.Fail == 0 || rep.Nodes != fleet {
		t.Errorf("low host: %+v", rep.Summary)
	}

	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Config  string         `json:"config"`
		Nodes   int            `json:"nodes"`
		Failed  bool           `json:"failed"`
		Summary map[string]int `json:"summary"`
		Results []map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Config != env.Config.File || doc.Nodes != fleet || !doc.Failed || doc.Summary["fail"] != rep.Summary.Fail || len(doc.Results) != len(rep.Results) {
		t.Errorf("JSON does not match the report: %s", buf.String())
	}
	for _, r := range doc.Results {
		for _, k := range []string{"check", "status", "found", "wanted"} {
			if _, ok := r[k]; !ok {
				t.Errorf("result without %q: %v", k, r)
			}
		}
	}

	file := string(rep.SysctlFile(env.Now))
	for _, line := range []string{"net.core.somaxconn = 6250", "net.ipv4.tcp_max_syn_backlog = 12500", "net.ipv4.tcp_syncookies = 1", "fs.file-max = 166560", "fs.nr_open = 101024"} {
		if !strings.Contains(file, "\n"+line+"\n") {
			t.Errorf("sysctl file lacks %q:\n%s", line, file)
		}
	}

	buf.Reset()
	if err := rep.WriteText(&buf, 100); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "FAIL  kernel.somaxconn: net.core.somaxconn = 128\n") || !strings.Contains(out, "8 fail, 7 skip (config ") {
		t.Errorf("text:\n%s", out)
	}
	checkLayout(t, rep, out, 100)
}

func TestSysctlFileNothingToDo(t *testing.T) {
	t.Parallel()
	cfg := parse(t, fmt.Sprintf("identity = b.example.net\nplugin.choria.use_srv = false\nplugin.choria.network.listen_address = 127.0.0.1\nplugin.choria.network.client_port = %d\nplugin.choria.stats_port = 0\n", testutil.FreePort(t)))
	rep := Default().Run(context.Background(), hostEnv(t, "tuned", cfg))
	if file := string(rep.SysctlFile(time.Now())); !strings.Contains(file, "Nothing to change") {
		t.Errorf("tuned host:\n%s", file)
	}
}

func TestLoadFailed(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("broker.conf", []byte("plugin.choria.network.client_port = 42x\n"))
	rep := LoadFailed("broker.conf", 10, err)
	if !rep.Failed || len(rep.Results) != 1 || rep.Results[0].Check != "config.load" || !strings.Contains(rep.Results[0].Found, "client_port") {
		t.Errorf("%+v", rep)
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("a name registered twice was accepted")
		}
	}()
	NewRegistry(memory{}, memory{})
}

// A report of long verdicts and fixes fits the width: only a word longer
// than a line (a path) goes beyond it, and no word is lost.
func TestWriteTextWraps(t *testing.T) {
	t.Parallel()
	long := "/var/lib/choria-broker/ssl/" + strings.Repeat("very-long-directory-name/", 6) + "broker.example.net.pem"
	rep := &Report{Config: "/etc/choria/broker.conf", Nodes: 50000}
	rep.add(Result{Check: "kernel.somaxconn", Status: Fail, Found: "net.core.somaxconn = 128",
		Wanted: "≥ 6 250 for 50 000 nodes (at least 4 092)",
		Fix:    "sysctl -w net.core.somaxconn=6250, persisted in /etc/sysctl.d (preflight --write-sysctl FILE writes it); a full accept queue drops connections after a broker restart, and the kernel logs it as a SYN flood"})
	rep.add(Result{Check: "pki.files", Item: "certificate", Status: Fail, Found: long + ": no PEM certificate found; expected a file with -----BEGIN CERTIFICATE-----\nand a second joined error",
		Wanted: "a readable PEM certificate, valid now, naming the identity, that run loads",
		Fix:    long + " is not PEM (no -----BEGIN CERTIFICATE-----: garbage, an HTML error page or DER); copy the certificate again from the CA, or re-issue it with choria-broker enroll --config /etc/choria/broker.conf"})
	rep.add(Result{Check: "config.keys", Status: Pass, Found: "every key known", Wanted: "no unknown or misspelt keys"})
	rep.add(Result{Check: "pki.expiry", Item: "certificate", Status: Skip, Found: "the certificate did not load (see pki.files)", Wanted: "a valid certificate"})
	for _, width := range []int{80, 120} {
		var buf bytes.Buffer
		if err := rep.WriteText(&buf, width); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		t.Logf("width %d:\n%s", width, out)
		checkLayout(t, rep, out, width)
		if !strings.Contains(out, "50 000 nodes") || !strings.Contains(out, "and a second joined error") {
			t.Errorf("width %d: a number's groups or a joined error split:\n%s", width, out)
		}
	}
}

// checkLayout: no line wider than width but for one unbreakable word, and
// every word of every found, wanted and fix in order.
func checkLayout(t *testing.T, rep *Report, out string, width int) {
	t.Helper()
	labels := map[string]bool{"PASS": true, "WARN": true, "FAIL": true, "SKIP": true, "wanted:": true, "fix:": true}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if utf8.RuneCountInString(line) <= width {
			continue
		}
		f := strings.Fields(line)
		if len(f) > 0 && labels[f[0]] {
			f = f[1:]
		}
		if len(f) != 1 {
			t.Errorf("width %d: line of %d characters: %q", width, utf8.RuneCountInString(line), line)
		}
	}
	flat := " " + strings.Join(strings.Fields(out), " ") + " "
	for _, r := range rep.Results {
		texts := []string{r.Found}
		if r.Status == Fail || r.Status == Warn {
			texts = append(texts, r.Wanted, r.Fix)
		}
		for _, s := range texts {
			if w := " " + strings.Join(strings.Fields(oneLine(s)), " ") + " "; !strings.Contains(flat, w) {
				t.Errorf("width %d: %q lost", width, s)
			}
		}
	}
}
