package stats

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/choria-broker/choria-broker/internal/buildinfo"
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"days": func(d time.Duration) string {
		return fmtFloat(d.Hours()/24, 1) + " days"
	},
	"bytes": bytesIEC, "percent": percent,
}).Parse(pageHTML))

type roleCount struct {
	Role string
	N    int
}

type peer struct {
	Name, Address, RTT string
	InMsgs, OutMsgs    int64
}

// pageData is everything the status page shows, read at request time.
type pageData struct {
	Identity, Version string
	Now               time.Time
	Uptime            string
	Refresh           int
	Health            health
	Network           bool

	Connections, TotalConnections, Subscriptions int
	SlowConsumers                                int64
	InMsgs, OutMsgs                              int64
	Roles                                        []roleCount
	Collectives                                  []string
	Rates                                        []series

	Peers         []peer
	ExpectedPeers int

	Websocket      string // the listener's URL, "" when off
	WebsocketConns int

	Federation           bool
	FedReceived, FedSent float64
	FedRate              string

	CertSubject    string
	CertNotAfter   time.Time
	CertLeft       time.Duration
	CRLFile        string
	CRLNextUpdate  time.Time
	CRLLeft        time.Duration
	CRLEntries     int
	RefusedByCause []roleCount

	Streams   *streamsPanel  // nil unless Choria Streams is configured
	Gateways  *gatewaysPanel // nil without gateway_port
	Leafnodes *leafPanel     // nil unless leafnodes are configured
}

func (s *Stats) servePage(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	d := pageData{
		Identity: s.o.Config.Identity, Version: buildinfo.Version(), Now: now,
		Uptime: time.Since(s.started).Round(time.Second).String(), Refresh: 10,
		Health: judge(s.o.Network, now), Federation: s.o.Federation,
		Rates: s.charts(),
	}
	if b := s.o.Network; b != nil && b.Engine() != nil {
		srv := b.Engine()
		d.Network = true
		if v, err := srv.Varz(nil); err == nil {
			d.Connections, d.TotalConnections, d.Subscriptions = v.Connections, int(v.TotalConnections), int(v.Subscriptions)
			d.SlowConsumers, d.InMsgs, d.OutMsgs = v.SlowConsumers, v.InMsgs, v.OutMsgs
		}
		for _, role := range roles {
			d.Roles = append(d.Roles, roleCount{string(role), 0})
		}
		for role, n := range b.ConnectionsByRole() {
			i := slices.IndexFunc(d.Roles, func(rc roleCount) bool { return rc.Role == string(role) })
			if i < 0 {
				d.Roles = append(d.Roles, roleCount{string(role), n})
			} else {
				d.Roles[i].N = n
			}
		}
		for _, reason := range refusalReason {
			d.RefusedByCause = append(d.RefusedByCause, roleCount{string(reason), int(b.Refused(reason))})
		}
		s.mu.Lock()
		d.Collectives = s.collectives
		s.mu.Unlock()
		if rz, err := srv.Routez(nil); err == nil {
			for _, ri := range rz.Routes {
				d.Peers = append(d.Peers, peer{Name: ri.RemoteName, Address: ri.IP + ":" + itoa(ri.Port), RTT: ri.RTT, InMsgs: ri.InMsgs, OutMsgs: ri.OutMsgs})
			}
		}
		d.ExpectedPeers = b.ExpectedPeers()
		if d.Websocket = b.WebsocketURL(); d.Websocket != "" {
			for _, n := range b.WebsocketByRole() {
				d.WebsocketConns += n
			}
		}
		ts := b.TrustStatus()
		d.CertSubject, d.CertNotAfter, d.CertLeft = ts.CertSubject, ts.CertNotAfter, ts.CertNotAfter.Sub(now)
		d.CRLFile, d.CRLNextUpdate, d.CRLEntries = ts.CRLFile, ts.CRLNextUpdate, ts.CRLEntries
		d.CRLLeft = ts.CRLNextUpdate.Sub(now)
		d.Streams = readStreams(b)
		d.Gateways = readGateways(b)
		d.Leafnodes = readLeafnodes(b)
	}
	if s.o.Federation {
		d.FedReceived, d.FedSent = s.federationTotals()
		d.FedRate = "–"
		if h := s.hist.all(); len(h) > 1 {
			a, z := h[len(h)-2], h[len(h)-1]
			if dt := z.at.Sub(a.at).Seconds(); dt > 0 {
				d.FedRate = fmtFloat((z.fedMsgs-a.fedMsgs)/dt, 1)
			}
		}
	}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, &d); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}
