package config

import (
	"maps"
	"slices"
	"strings"
)

// Change is one setting whose value differs between two configurations.
type Change struct {
	Key      string
	Old, New string // as written in a file; secrets hidden
	// Where is the file:line of the new value, or says the setting was
	// removed and where it was.
	Where string
}

// Diff lists every setting that differs between old and next: the
// settings table's keys in its order (defaults and derived values
// included), then other keys (plugins', unknown) sorted by name.
func Diff(old, next *Config) []Change {
	var out []Change
	add := func(key, o, n string) {
		if o == n {
			return
		}
		if secret(key) {
			o, n = hide(o), hide(n)
		}
		if strings.HasPrefix(key, LeafRemotePrefix) && strings.HasSuffix(key, ".url") {
			o, n = redactURL(o), redactURL(n) // a hub's login may be in it
		}
		where := next.Where(key)
		if where == "" {
			where = "not set (the default applies)"
			if w := old.Where(key); w != "" {
				where = "removed from " + w + " (the default applies)"
			}
		}
		out = append(out, Change{Key: key, Old: o, New: n, Where: where})
	}
	for i := range settings {
		s := &settings[i]
		if s.field != nil {
			add(s.name, show(s.get(old)), show(s.get(next)))
		}
	}
	keys := slices.Sorted(maps.Keys(old.Raw))
	for _, k := range slices.Sorted(maps.Keys(next.Raw)) {
		if _, ok := old.Raw[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if s := lookup(k); s != nil && s.field != nil {
			continue // compared above, as typed values
		}
		add(k, old.Raw[k], next.Raw[k])
	}
	return out
}

// secret: passwords stay out of logs.
func secret(key string) bool {
	last := key[strings.LastIndexByte(key, '.')+1:]
	return strings.Contains(last, "pass") || strings.Contains(last, "secret") || strings.Contains(last, "token")
}

func hide(v string) string {
	if v == "" {
		return ""
	}
	return "(hidden)"
}

// Clone copies c; the copy's maps are its own, so Adopt on it leaves c alone.
func (c *Config) Clone() *Config {
	n := *c
	n.Raw = maps.Clone(c.Raw)
	n.where = maps.Clone(c.where)
	return &n
}

// Adopt takes key's value, and where it was set, from other: a reload
// applying one changed setting.
func (c *Config) Adopt(other *Config, key string) {
	if s := lookup(key); s != nil && s.field != nil {
		s.set(c, s.get(other))
	}
	if v, ok := other.Raw[key]; ok {
		c.Raw[key] = v
	} else {
		delete(c.Raw, key)
	}
	if w, ok := other.where[key]; ok {
		if c.where == nil {
			c.where = map[string]string{}
		}
		c.where[key] = w
	} else {
		delete(c.where, key)
	}
}
