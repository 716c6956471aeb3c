package preflight

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
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

// MinWidth is the narrowest layout WriteText makes.
const MinWidth = 40

// WriteText writes one entry per result, lines wrapped at width: the
// status, the check and what was found; for a warning or failure, what is
// wanted and the fix on the lines below, indented. Only a single word
// longer than a line (a long path) goes beyond width. A summary ends it.
func (r *Report) WriteText(w io.Writer, width int) error {
	width = max(width, MinWidth)
	var b strings.Builder
	const indent = "      " // under the check name, past "FAIL  "
	for _, res := range r.Results {
		name := res.Check
		if res.Item != "" {
			name += " " + res.Item
		}
		wrap(&b, width, fmt.Sprintf("%-4s  ", strings.ToUpper(string(res.Status))), indent, name+": "+oneLine(res.Found))
		if res.Status == Pass || res.Status == Skip {
			continue
		}
		wrap(&b, width, indent+"wanted: ", indent+"        ", oneLine(res.Wanted))
		if res.Fix != "" {
			wrap(&b, width, indent+"fix: ", indent+"     ", oneLine(res.Fix))
		}
	}
	b.WriteString("\n")
	wrap(&b, width, "", "", fmt.Sprintf("%d pass, %d warn, %d fail, %d skip (config %s, %d nodes)",
		r.Summary.Pass, r.Summary.Warn, r.Summary.Fail, r.Summary.Skip, r.Config, r.Nodes))
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap writes text in lines of at most width, the first after first, the
// others after next; it breaks only between words, and never inside a
// number written in groups ("50 000"). A word too long for any line gets
// a line of its own.
func wrap(b *strings.Builder, width int, first, next, text string) {
	line, empty := first, true
	for _, word := range words(text) {
		switch {
		case empty:
			line += word
			empty = false
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			b.WriteString(line + "\n")
			line = next + word
		}
	}
	b.WriteString(line + "\n")
}

// oneLine keeps the parts of a joined error apart once wrapped.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

// words splits text at white space, keeping the groups of a number together.
func words(text string) []string {
	var out []string
	for _, f := range strings.Fields(text) {
		if n := len(out); n > 0 && endsInDigit(out[n-1]) && isGroup(f) {
			out[n-1] += " " + f
			continue
		}
		out = append(out, f)
	}
	return out
}

func endsInDigit(s string) bool { return s[len(s)-1] >= '0' && s[len(s)-1] <= '9' }

// isGroup: three digits, then no digit ("000", "024)", "576;").
func isGroup(s string) bool {
	if len(s) < 3 {
		return false
	}
	for i := range 3 {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) == 3 || s[3] < '0' || s[3] > '9'
}

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
