package broker

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// floodLimit is a small log limit that summarises often, so that a flood
// test sees its summaries within a bounded wait.
var floodLimit = logLimit{Burst: 10, Every: time.Hour, Period: 100 * time.Millisecond}

var notLoggedRe = regexp.MustCompile(`not_logged=(\d+)`)

// floodLines splits the log's lines of kind into those logged one by one
// and the summaries, and adds up what the summaries say was held back.
func floodLines(logs *syncBuffer, kind string) (logged int, summaries int, notLogged uint64) {
	for _, l := range logs.lines(`msg="` + kind) {
		if m := notLoggedRe.FindStringSubmatch(l); m != nil && strings.Contains(l, "more lines not logged") {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			summaries++
			notLogged += n
			continue
		}
		logged++
	}
	return
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// warnLines counts the lines at WARN or above: what reaches a production log.
func warnLines(logs *syncBuffer) int {
	return len(logs.lines("level=WARN")) + len(logs.lines("level=ERROR"))
}

// TestCertificatelessFloodLogBounded: 2 000 TLS handshakes without a
// certificate are all counted, but logged only up to the limit, with
// summaries saying how many more there were.
func TestCertificatelessFloodLogBounded(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.HandshakeAdmission = false // every handshake reaches admission, none is shed
	b, logs := startBroker(t, cfg, withLogLimit(floodLimit))
	before := warnLines(logs)

	const total, workers = 2000, 8
	addr := b.ClientAddr().String()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range total / workers {
				if err := certificatelessHandshake(addr); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "2000 refusals counted", func() bool { return b.Refused(pki.NoCertificate) == total })
	waitFor(t, 10*time.Second, "the summaries account for every refusal", func() bool {
		logged, _, notLogged := floodLines(logs, limitClients)
		return uint64(logged)+notLogged == total
	})
	logged, summaries, notLogged := floodLines(logs, limitClients)
	if logged > floodLimit.Burst {
		t.Errorf("%d refusals logged one by one, want at most the burst of %d", logged, floodLimit.Burst)
	}
	if summaries == 0 || notLogged != total-uint64(logged) {
		t.Errorf("%d summaries say %d not logged, want %d", summaries, notLogged, total-logged)
	}
	if got := b.LogSuppressed(limitClients); got != notLogged {
		t.Errorf("suppressed metric %d, summaries %d", got, notLogged)
	}
	if n := warnLines(logs) - before; n > logged+summaries+5 {
		t.Errorf("%d warnings and errors for 2000 refused handshakes; the engine's own lines are not bounded", n)
	}
	if s := logs.lines(limitClients, "more lines not logged"); len(s) > 0 && !strings.Contains(s[0], `by_reason="no certificate: `) {
		t.Errorf("summary does not say why: %s", s[0])
	}
}

// certificatelessHandshake does what a port scanner or a misconfigured
// client does: a TLS handshake to the client port with no certificate.
func certificatelessHandshake(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// The engine greets with INFO in clear, then expects TLS.
	if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
		return fmt.Errorf("no INFO: %w", err)
	}
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // the broker's certificate is not what this test is about
	if err := tc.Handshake(); err != nil {
		return nil // TLS 1.2: refused within the handshake
	}
	// TLS 1.3: the refusal arrives as an alert after the client's side is done.
	_, _ = tc.Read(make([]byte, 1))
	return nil
}

// TestSubjectRefusalFloodLogBounded: one node connection publishing to
// 1 000 refused subjects, then to one more 20 000 times, is counted in
// full and logged within the limit; the per-subject memory filling up
// does not turn into a line per publish.
func TestSubjectRefusalFloodLogBounded(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	b, logs := startBroker(t, p.config(), withLogLimit(floodLimit))
	node := connectRole(t, b, p, p.issue(t, pki.IssueOptions{Name: "node1.example.net"}))
	before := warnLines(logs)

	const distinct, repeats = maxLoggedSubjects, 20000
	for i := range distinct {
		if err := node.Publish(fmt.Sprintf("mcollective.broadcast.agent.a%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for range repeats {
		if err := node.Publish("mcollective.broadcast.agent.rpcutil", nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := node.FlushTimeout(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	const total = distinct + repeats
	waitFor(t, 30*time.Second, "21000 refused publishes counted", func() bool { return b.Violations("publish") == total })
	waitFor(t, 10*time.Second, "the summaries account for every refusal", func() bool {
		logged, _, notLogged := floodLines(logs, limitSubject)
		return uint64(logged)+notLogged == total
	})
	logged, summaries, _ := floodLines(logs, limitSubject)
	if logged > floodLimit.Burst || summaries == 0 {
		t.Errorf("%d subject refusals logged one by one (want at most %d), %d summaries", logged, floodLimit.Burst, summaries)
	}
	if n := warnLines(logs) - before; n > logged+summaries+5 {
		t.Errorf("%d warnings and errors for %d refused publishes", n, total)
	}
	if s := logs.lines(limitSubject, "more lines not logged"); len(s) > 0 && !strings.Contains(s[0], `by_reason="publish: `) {
		t.Errorf("summary does not say why: %s", s[0])
	}
}

// TestEngineErrorFloodLogBounded: the engine's own error line for each
// connection (here a client that does not trust the broker and aborts the
// handshake) is bounded the same way.
func TestEngineErrorFloodLogBounded(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t)
	cfg := p.config()
	cfg.Network.HandshakeAdmission = false // aborted handshakes hold a slot until tls_timeout, and some would be shed
	b, logs := startBroker(t, cfg, withLogLimit(floodLimit))
	const total = 200
	for range total {
		conn, err := net.DialTimeout("tcp", b.ClientAddr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := bufio.NewReader(conn).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		// An empty pool trusts nothing: the client refuses the broker.
		tc := tls.Client(conn, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12})
		if err := tc.Handshake(); err == nil {
			t.Fatal("handshake trusted a broker it has no CA for")
		}
		conn.Close()
	}
	waitFor(t, 20*time.Second, "every aborted handshake logged or summarised", func() bool {
		logged := len(logs.lines("TLS handshake error", "level=ERROR"))
		return uint64(logged)+b.LogSuppressed(limitEngine) == total
	})
	if n := len(logs.lines("TLS handshake error", "level=ERROR")); n > floodLimit.Burst {
		t.Errorf("%d engine handshake errors logged, want at most %d", n, floodLimit.Burst)
	}
	waitFor(t, 10*time.Second, "a summary of the engine's lines", func() bool {
		return len(logs.lines(limitEngine, "more lines not logged", `by_reason="TLS handshake error: `)) > 0
	})
}
