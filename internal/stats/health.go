package stats

import (
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/broker"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// Health levels, worst last.
const (
	Green = "green"
	Amber = "amber"
	Red   = "red"
)

// certWarning is how close to expiry the broker's certificate turns amber.
const certWarning = 30 * 24 * time.Hour

// health is the status page's verdict with its reasons.
type health struct {
	Level   string
	Reasons []string
}

func (h *health) raise(level, reason string) {
	if rank(level) > rank(h.Level) {
		h.Level = level
	}
	h.Reasons = append(h.Reasons, reason)
}

func rank(l string) int {
	switch l {
	case Red:
		return 2
	case Amber:
		return 1
	}
	return 0
}

// judge decides the broker's health from its trust and cluster state.
func judge(b *broker.Broker, now time.Time) health {
	h := health{Level: Green}
	if b == nil {
		h.Reasons = []string{"federation broker running"}
		return h
	}
	if b.Engine() == nil {
		h.raise(Red, "the broker is not running")
		return h
	}
	ts := b.TrustStatus()
	switch left := ts.CertNotAfter.Sub(now); {
	case ts.CertNotAfter.IsZero():
	case left <= 0:
		h.raise(Red, fmt.Sprintf("the broker's certificate expired on %s", ts.CertNotAfter.UTC().Format(time.DateOnly)))
	case left < certWarning:
		h.raise(Amber, fmt.Sprintf("the broker's certificate expires in %d days (%s)", int(left.Hours()/24), ts.CertNotAfter.UTC().Format(time.DateOnly)))
	}
	if ts.Trust != nil {
		switch invalid, none := ts.Trust.CAValidity(now); {
		case none:
			h.raise(Red, fmt.Sprintf("the CA bundle %s has no valid CA certificate (%s: %s): every client is refused; install the CA's current certificate", ts.CAFile, invalid[0].Subject, validity(invalid[0], now)))
		case len(invalid) > 0:
			h.raise(Amber, fmt.Sprintf("CA certificate %s in %s is %s: certificates it issued are refused", invalid[0].Subject, ts.CAFile, validity(invalid[0], now)))
		case !ts.CANotAfter.IsZero() && ts.CANotAfter.Sub(now) < certWarning:
			h.raise(Amber, fmt.Sprintf("a CA certificate in %s expires in %d days (%s)", ts.CAFile, int(ts.CANotAfter.Sub(now).Hours()/24), ts.CANotAfter.UTC().Format(time.DateOnly)))
		}
	}
	ps := b.PKIStatus()
	for _, p := range pki.Parts {
		if msg, bad := ps.Failing[p]; bad {
			h.raise(Amber, fmt.Sprintf("the %s failed to reload since %s, the previous one stays in force (a restart would fail): %s", partName[p], ps.FailingSince[p].UTC().Format(time.RFC3339), msg))
		}
	}
	if !ts.CRLNextUpdate.IsZero() && now.After(ts.CRLNextUpdate) {
		h.raise(Amber, fmt.Sprintf("the CRL is stale: its nextUpdate %s has passed; refresh %s from the CA", ts.CRLNextUpdate.UTC().Format(time.RFC3339), ts.CRLFile))
	}
	if want := b.ExpectedPeers(); want > 0 {
		if got := len(b.RouteNames()); got < want {
			h.raise(Amber, fmt.Sprintf("cluster incomplete: %d of %d peers connected", got, want))
		}
	}
	var down []string
	for _, l := range b.GatewayStatus().Links {
		if l.Configured && l.Outbound == nil {
			down = append(down, l.Cluster)
		}
	}
	if len(down) > 0 {
		h.raise(Amber, fmt.Sprintf("no gateway link to %s: messages for that cluster are not delivered (see the log)", strings.Join(down, ", ")))
	}
	ls := b.Leafnodes()
	for _, r := range ls.Remotes {
		if !r.Up {
			h.raise(Amber, fmt.Sprintf("leafnode remote %s is not connected to its hub (%s); the log says why", r.Name, strings.Join(r.URLs, ", ")))
		}
	}
	if ls.Port > 0 && !ls.Brokers {
		h.raise(Amber, "plugin.choria.network.leafnode_port is set but plugin.choria.network.leafnode_brokers is empty: every leafnode is refused")
	}
	st := b.StreamsStatus()
	if st.Error != "" {
		h.raise(Amber, st.Error)
	} else if len(st.Pending) > 0 {
		h.raise(Amber, fmt.Sprintf("Choria Streams: %d standard streams not in place yet (see the log)", len(st.Pending)))
	}
	for _, name := range slices.Sorted(maps.Keys(st.Damaged)) {
		h.raise(Amber, "Choria Streams: "+st.Damaged[name])
	}
	if len(h.Reasons) == 0 {
		h.Reasons = []string{"certificate, CA, CRL, cluster, gateways and leafnodes are fine"}
	}
	return h
}

// partName is how health names each reloaded file.
var partName = map[pki.Part]string{
	pki.PartCertificate: "broker certificate", pki.PartKey: "broker key",
	pki.PartCA: "CA bundle", pki.PartCRL: "CRL",
}

// validity says how a CA certificate is outside its validity.
func validity(c *x509.Certificate, now time.Time) string {
	if now.Before(c.NotBefore) {
		return "not valid until " + c.NotBefore.UTC().Format(time.RFC3339)
	}
	return "expired " + c.NotAfter.UTC().Format(time.RFC3339)
}
