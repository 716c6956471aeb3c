package config

import (
	"maps"
	"slices"
	"strings"
)

// Mapping is one subject mapping, plugin.choria.network.mapping.NAME.*:
// a message published on Source goes to Destination instead.
type Mapping struct {
	Name        string
	Source      string
	Destination string
}

const (
	mappingPrefix = "plugin.choria.network.mapping."
	mappingNames  = mappingPrefix + "names"
)

// MappingKey is the key of a mapping's property: source or destination.
func MappingKey(name, property string) string { return mappingPrefix + name + "." + property }

// readMappings fills Network.Mappings from mapping.names and the keys of
// each name. go-choria logs and skips a mapping missing a side; here it
// is an error with its file:line, as is a key no listed name reads: a
// setting we accept is never ignored. The engine checks the subjects
// themselves (internal/broker/mapping.go).
func (p *parser) readMappings() {
	c := p.c
	if p.failed[mappingNames] {
		return
	}
	c.Network.Mappings = nil
	listed := map[string]bool{}
	sources := map[string]string{} // source -> the name that maps it
	for _, name := range c.Network.MappingNames {
		if listed[name] {
			continue // named twice: one mapping all the same
		}
		listed[name] = true
		m := Mapping{Name: name, Source: strings.TrimSpace(c.Raw[MappingKey(name, "source")]), Destination: strings.TrimSpace(c.Raw[MappingKey(name, "destination")])}
		for _, side := range [][2]string{{"source", m.Source}, {"destination", m.Destination}} {
			if prop := side[0]; side[1] == "" {
				e := c.KeyError(mappingNames, `mapping "`+name+`" is listed here but has no `+MappingKey(name, prop)+`; set it, or take `+name+` off the list`)
				e.Key = MappingKey(name, prop)
				p.fail(e)
			}
		}
		if m.Source == "" || m.Destination == "" {
			continue
		}
		if other, dup := sources[m.Source]; dup {
			p.fail(c.KeyError(MappingKey(name, "source"), `mapping "`+other+`" has the same source (`+c.Where(MappingKey(other, "source"))+`); the engine keeps one mapping per source: remove one of them`))
			continue
		}
		sources[m.Source] = name
		c.Network.Mappings = append(c.Network.Mappings, m)
	}
	for _, key := range slices.Sorted(maps.Keys(c.Raw)) {
		rest, ok := strings.CutPrefix(key, mappingPrefix)
		if !ok || key == mappingNames {
			continue
		}
		name, prop := "", rest
		if i := strings.LastIndexByte(rest, '.'); i >= 0 {
			name, prop = rest[:i], rest[i+1:]
		}
		switch {
		case prop != "source" && prop != "destination":
			p.fail(c.KeyError(key, `unknown mapping setting "`+prop+`"; a mapping has `+mappingPrefix+`NAME.source and .destination`))
		case !listed[name]:
			p.fail(c.KeyError(key, `mapping "`+name+`" is not in `+mappingNames+`, so this line would be ignored; add `+name+` to the list, or remove the line`))
		}
	}
}
