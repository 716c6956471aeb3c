package stats

import "testing"

func TestBytesIEC(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 25 << 20: "25.0 MiB",
		9 << 30: "9.0 GiB", 3 << 40: "3.0 TiB", 1 << 62: "4.0 EiB",
	} {
		if got := bytesIEC(n); got != want {
			t.Errorf("bytesIEC(%d) = %q, want %q", n, got, want)
		}
	}
	if got := percent(1, 0); got != "–" {
		t.Errorf("percent without a limit = %q", got)
	}
	if got := percent(1, 8); got != "12.5%" {
		t.Errorf("percent(1, 8) = %q", got)
	}
}
