package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/choria-broker/choria-broker/internal/devenv"
	"github.com/choria-broker/choria-broker/internal/testutil"
)

// preflight --json on a development config: one JSON document whose
// failed field matches the exit code, and a sysctl file when asked.
func TestPreflightJSON(t *testing.T) {
	t.Parallel()
	env, err := devenv.Prepare(t.TempDir(), devenv.Options{ClientPort: testutil.FreePort(t), StatsPort: testutil.FreePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	sysctl := filepath.Join(t.TempDir(), "60-choria-broker.conf")
	cmd, out := command(t, "preflight", "--config", env.BrokerConf, "--nodes", "100", "--json", "--write-sysctl", sysctl, "--measure", "20ms")
	cmd.Stderr = nil
	err = cmd.Run()
	var rep struct {
		Config  string         `json:"config"`
		Nodes   int            `json:"nodes"`
		Failed  bool           `json:"failed"`
		Summary map[string]int `json:"summary"`
		Results []struct {
			Check, Item, Status, Found, Wanted, Fix, Sysctl string
		} `json:"results"`
	}
	if jerr := json.Unmarshal([]byte(out.String()), &rep); jerr != nil {
		t.Fatalf("stdout is not one JSON document: %v\n%s", jerr, out)
	}
	exit := 0
	if ee, ok := err.(*exec.ExitError); ok {
		exit = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if (exit == 1) != rep.Failed || (exit != 0 && exit != 1) {
		t.Fatalf("exit %d with failed=%v", exit, rep.Failed)
	}
	if rep.Config != env.BrokerConf || rep.Nodes != 100 || len(rep.Results) < 20 {
		t.Fatalf("report: %+v", rep)
	}
	byCheck := map[string]string{}
	for _, r := range rep.Results {
		if r.Status != "pass" && r.Status != "warn" && r.Status != "fail" && r.Status != "skip" {
			t.Errorf("status %q", r.Status)
		}
		byCheck[r.Check+" "+r.Item] = r.Status
	}
	// The development CA's files are all in order.
	for _, c := range []string{"pki.files certificate", "pki.files key", "pki.files ca", "pki.crl ", "pki.names identity", "config.keys "} {
		if byCheck[c] != "pass" {
			t.Errorf("%s: %q", c, byCheck[c])
		}
	}
	data, err := os.ReadFile(sysctl)
	if err != nil || !strings.HasPrefix(string(data), "# Kernel settings for a Choria broker of 100 nodes") {
		t.Errorf("sysctl file: %v\n%s", err, data)
	}
}

func TestPreflightTableAndBadConfig(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "broker.conf")
	os.WriteFile(file, []byte("plugin.choria.network.client_port = 42x\n"), 0o644)
	cmd, out := command(t, "preflight", "--config", file)
	cmd.Env = append(cmd.Env, "COLUMNS=60") // not a terminal: $COLUMNS sets the width
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v: %s", err, out)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if len(line) > 60 && len(strings.Fields(line)) > 1 {
			t.Errorf("line wider than $COLUMNS: %q", line)
		}
	}
	flat := strings.Join(strings.Fields(out.String()), " ") // lines wrap at the width
	for _, want := range []string{"FAIL config.load:", file + ":1: plugin.choria.network.client_port"} {
		if !strings.Contains(flat, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A configuration run refuses fails preflight with run's own message.
func TestPreflightRefusesWhatRunRefuses(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "broker.conf")
	os.WriteFile(file, []byte("identity = b.example.net\nplugin.choria.use_srv = false\n"), 0o644)
	run, runOut := command(t, "run", "--config", file)
	if ee, ok := run.Run().(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("run: want exit 1: %s", runOut)
	}
	said := strings.TrimSpace(strings.TrimPrefix(runOut.String(), "choria-broker: "))
	if !strings.HasPrefix(said, "nothing to run") {
		t.Fatalf("run said %q", said)
	}

	pf, out := command(t, "preflight", "--config", file, "--nodes", "10", "--json", "--measure", "20ms")
	pf.Stderr = nil
	if ee, ok := pf.Run().(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("preflight: want exit 1: %s", out)
	}
	var rep struct {
		Results []struct{ Check, Status, Found string } `json:"results"`
	}
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Check == "config.run" {
			if r.Status != "fail" || r.Found != said {
				t.Errorf("config.run %s %q; run said %q", r.Status, r.Found, said)
			}
			return
		}
	}
	t.Errorf("no config.run result: %s", out)
}
