package stats

import (
	"slices"
	"strconv"
)

func itoa(n int) string { return strconv.Itoa(n) }

func fmtFloat(f float64, prec int) string { return strconv.FormatFloat(f, 'f', prec, 64) }

func sortStrings(s []string) { slices.Sort(s) }
