package broker

import "testing"

// TestEngineBannerQuiet: the engine's start-up banner says "Git: [not set]"
// in our builds; that is noise at info level, kept for debug.
func TestEngineBannerQuiet(t *testing.T) {
	t.Parallel()
	_, logs := startBroker(t, newTestPKI(t).config())
	if l := logs.lines("level=INFO", "[not set]"); len(l) != 0 {
		t.Errorf("info lines with [not set]: %q", l)
	}
	if len(logs.lines("level=INFO", "Version:")) != 1 || len(logs.lines("level=DEBUG", "Git:")) != 1 {
		t.Errorf("the banner's version should stay at info, its Git line go to debug:\n%s", logs)
	}
}
