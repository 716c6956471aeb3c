package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is every result of a run, as printed and as --json writes it.
type Report struct {
	Config  string   `json:"config"`
	Nodes   int      `json:"nodes"`
	Failed  bool     `json:"failed"` // some result is fail: preflight exits 1
	Summary Summary  `json:"summary"`
	Results []Result `json:"results"`
}

// Summary counts results by status.
type Summary struct {
	Pass int `json:"pass"`
	Warn int `json:"warn"`
	Fail int `json:"fail"`
	Skip int `json:"skip"`
}

func (r *Report) add(res Result) {
	r.Results = append(r.Results, res)
	switch res.Status {
	case Pass:
		r.Summary.Pass++
	case Warn:
		r.Summary.Warn++
	case Fail:
		r.Summary.Fail++
		r.Failed = true
	case Skip:
		r.Summary.Skip++
	}
}

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes a table of check, status, found, wanted and fix, then
// a summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tSTATUS\tFOUND\tWANTED\tFIX")
	for _, res := range r.Results {
		name := res.Check
		if res.Item != "" {
			name += " " + res.Item
		}
		fix := res.Fix
		if res.Status == Pass || res.Status == Skip {
			fix = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, strings.ToUpper(string(res.Status)), oneLine(res.Found), oneLine(res.Wanted), oneLine(fix))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d pass, %d warn, %d fail, %d skip (config %s, %d nodes)\n",
		r.Summary.Pass, r.Summary.Warn, r.Summary.Fail, r.Summary.Skip, r.Config, r.Nodes)
	return err
}

// oneLine keeps a table row on one line; joined errors carry newlines.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

// SysctlFile is a sysctl.d file with every kernel setting that did not
// pass, for the operator to install; it changes nothing by itself.
func (r *Report) SysctlFile(now time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Kernel settings for a Choria broker of %d nodes, written by choria-broker preflight on %s.\n", r.Nodes, now.UTC().Format("2006-01-02"))
	b.WriteString("# Install: cp this file /etc/sysctl.d/60-choria-broker.conf && sysctl --system\n")
	n := 0
	for _, res := range r.Results {
		if res.Sysctl == "" || res.Status == Pass || res.Status == Skip {
			continue
		}
		fmt.Fprintf(&b, "# %s: found %s, wanted %s\n%s\n", res.Check, res.Found, res.Wanted, res.Sysctl)
		n++
	}
	if n == 0 {
		b.WriteString("# Nothing to change: every kernel check passed.\n")
	}
	return []byte(b.String())
}
