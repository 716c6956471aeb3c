package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/choria-broker/choria-broker/internal/testutil"
)

// A go-choria broker.conf using provisioning: run and preflight both exit 1
// naming the key by file:line and saying what to do.
func TestRunAndPreflightRefuseUnsupported(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "broker.conf")
	// Loopback only: no SRV lookup, free ports for preflight's port check.
	conf := fmt.Sprintf("identity = b.example.net\nplugin.choria.broker_network = true\nplugin.choria.network.provisioning.client_password = s3cret\n"+
		"plugin.choria.use_srv = false\nplugin.choria.network.listen_address = 127.0.0.1\nplugin.choria.network.client_port = %d\nplugin.choria.stats_port = %d\n",
		testutil.FreePort(t), testutil.FreePort(t))
	os.WriteFile(file, []byte(conf), 0o644)
	want := file + ":3: plugin.choria.network.provisioning.client_password: not supported yet: provisioning; remove the setting, or keep go-choria's broker"
	for _, args := range [][]string{{"run"}, {"preflight", "--measure", "10ms"}} {
		cmd, out := command(t, append(args, "--config", file)...)
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("%s: want exit 1, got %v: %s", args[0], err, out)
		}
		// preflight wraps its lines at the width.
		if !strings.Contains(strings.Join(strings.Fields(out.String()), " "), want) {
			t.Errorf("%s does not say %q:\n%s", args[0], want, out)
		}
	}
}
