package preflight

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

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
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasPrefix(out, "CHECK") || !strings.Contains(out, "kernel.somaxconn") || !strings.Contains(out, "FAIL") || !strings.Contains(out, "8 fail, 3 skip (config ") {
		t.Errorf("table:\n%s", out)
	}
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
