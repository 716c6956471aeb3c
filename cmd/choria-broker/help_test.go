package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// pflag turns backquoted text in a flag's description into the flag's
// value placeholder, so "--dev" once read as "--dev choria-broker dev".
func TestFlagDescriptionsHaveNoPlaceholders(t *testing.T) {
	t.Parallel()
	var walk func(*cobra.Command)
	seen := 0
	walk = func(cmd *cobra.Command) {
		cmd.InitDefaultHelpFlag()
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			seen++
			name, _ := pflag.UnquoteUsage(f)
			if strings.ContainsRune(f.Usage, '`') {
				t.Errorf("%s --%s: description %q has backquotes; pflag shows the quoted text as the value placeholder %q", cmd.CommandPath(), f.Name, f.Usage, name)
			}
			if f.Value.Type() == "bool" && name != "" {
				t.Errorf("%s --%s: boolean flag shows a value placeholder %q", cmd.CommandPath(), f.Name, name)
			}
		})
		for _, c := range cmd.Commands() {
			walk(c)
		}
	}
	walk(rootCommand())
	if seen < 20 {
		t.Fatalf("walked only %d flags; the command tree was not built", seen)
	}
}

func TestPingHelpDevFlag(t *testing.T) {
	t.Parallel()
	root := rootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"ping", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatalf("ping --help: %v\n%s", err, out.String())
	}
	if !regexp.MustCompile(`(?m)^\s+--dev\s{2,}use the development environment`).MatchString(out.String()) {
		t.Fatalf("ping --help does not show --dev followed by its description:\n%s", out.String())
	}
}
