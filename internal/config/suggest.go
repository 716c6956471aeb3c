package config

import "strings"

// misspelling returns a warning when an unknown key looks like a typo of a
// known one; other unknown keys belong to plugins we do not know and are
// kept silently.
func misspelling(file string, line int, key string) *Error {
	if r, ok := renamed[key]; ok {
		return &Error{File: file, Line: line,
			Msg: `unknown setting "` + key + `" (` + r.why + `); did you mean "` + r.to + `"?`}
	}
	if best := closestKey(key); best != "" {
		return &Error{File: file, Line: line,
			Msg: `unknown setting "` + key + `"; did you mean "` + best + `"?`}
	}
	return nil
}

// closestKey finds the known key that differs from key only by separators
// or case, or by a small edit distance scaled to the key's length so that
// short keys such as ttl do not attract every three-letter word.
func closestKey(key string) string {
	norm := normalizeKey(key)
	best, bestDist := "", 3
	for i := range settings {
		name := settings[i].name
		if isFamily(name) {
			continue
		}
		if normalizeKey(name) == norm {
			return name
		}
		limit := 2
		switch {
		case len(name) < 4:
			limit = 0
		case len(name) < 8:
			limit = 1
		}
		if d := editDistance(key, name, limit); d <= limit && d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

// normalizeKey folds case and the separators people mix up.
func normalizeKey(k string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '_', '-':
			return '.'
		}
		return r
	}, strings.ToLower(k))
}

// editDistance is the optimal string alignment distance (Levenshtein plus
// adjacent transpositions) of a and b; it returns limit+1 as soon as the
// result must exceed limit, which keeps long fuzzed keys cheap.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	prevMin := 0
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		// A transposition can skip one row, so give up only when two
		// rows in a row are already over the limit.
		if rowMin > limit && prevMin > limit {
			return limit + 1
		}
		prevMin = rowMin
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
