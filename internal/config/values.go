package config

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// kind is how a setting's text is turned into a typed value.
type kind int

const (
	kString   kind = iota
	kPath          // string with ~ expanded
	kEnum          // string from a fixed set, stored in canonical form
	kBool          // 1|yes|true|y|t, 0|no|false|n|f
	kInt           // any whole number; limits come from the setting's check
	kPort          // 1-65535
	kPortOff       // 0-65535, 0 turns the listener off
	kDuration      // whole seconds, or Go syntax plus d, w, M, y/Y
	kList          // comma separated; a later line replaces the list
)

// what each kind accepts, for error messages.
var kindHelp = [...]string{
	kString:   "text",
	kPath:     "a path",
	kEnum:     "one of a fixed set",
	kBool:     "not a boolean (true/false, yes/no, y/n, t/f, 1/0)",
	kInt:      "not a whole number",
	kPort:     "not a port number (1-65535)",
	kPortOff:  "not a port number (1-65535, or 0 to turn it off)",
	kDuration: "not a duration (whole seconds such as 10, or 500ms, 10s, 5m, 2h, 1d12h; units ms s m h d w M y)",
	kList:     "a comma separated list",
}

// enum is the accepted spellings of an enum setting.
type enum struct {
	names []string          // canonical values, in the order shown to users
	alias map[string]string // lower-case spelling -> canonical value
}

// enumOf builds an enum from "value" or "alias=value" words.
func enumOf(words ...string) *enum {
	e := &enum{alias: map[string]string{}}
	for _, w := range words {
		from, to, isAlias := strings.Cut(w, "=")
		if !isAlias {
			to = from
			e.names = append(e.names, from)
		}
		e.alias[from] = to
	}
	return e
}

func (e *enum) lookup(s string) (string, bool) {
	v, ok := e.alias[strings.ToLower(s)]
	return v, ok
}

func (e *enum) help() string {
	return "not one of " + strings.Join(e.names, ", ")
}

// parseBool accepts exactly the words Choria treats as true or false;
// unlike Choria, anything else is an error rather than a silent false.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "1", "yes", "true", "y", "t":
		return true, true
	case "0", "no", "false", "n", "f":
		return false, true
	}
	return false, false
}

// parseInt accepts a plain decimal number.
func parseInt(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// parsePort accepts 1-65535, or 0 as well when zeroOK.
func parsePort(s string, zeroOK bool) (int, bool) {
	n, ok := parseInt(s)
	if !ok || n > 65535 || n < 0 || (n == 0 && !zeroOK) {
		return 0, false
	}
	return n, true
}

// Units Choria adds to Go's duration syntax, in hours.
var longUnits = map[string]time.Duration{"d": 24, "w": 7 * 24, "M": 30 * 24, "Y": 365 * 24, "y": 365 * 24}

// parseDuration reads Choria durations: digits only are seconds, otherwise
// one or more number+unit pairs such as 1d12h or 1.5h. Negative durations
// are rejected: no Choria setting has a use for them.
func parseDuration(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	if isDigits(s) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > math.MaxInt64/int64(time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	var total time.Duration
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && (isDigit(rest[i]) || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && !isDigit(rest[j]) && rest[j] != '.' {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return 0, false
		}
		var d time.Duration
		if hours, ok := longUnits[unit]; ok {
			h, err := time.ParseDuration(num + "h")
			if err != nil || h > math.MaxInt64/hours {
				return 0, false
			}
			d = h * hours
		} else {
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, false
			}
		}
		if total > math.MaxInt64-d {
			return 0, false
		}
		total += d
	}
	return total, true
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// SplitList reads a Choria list value: split on commas, items trimmed,
// empty ones dropped.
func SplitList(s string) []string {
	out := []string{}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// expandHome turns a leading ~ into the user's home directory, as Choria
// does for path settings. ~user forms are left alone.
func expandHome(p string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return p
	}
	return filepath.Join(home, p[1:])
}
