package broker

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/choria-broker/choria-broker/internal/pki"
)

// crlState is what the broker knows of its CRL's freshness.
type crlState struct {
	lastRefresh atomic.Int64 // unix nanoseconds of the last good fetch
	failing     atomic.Bool  // the last fetch failed; the previous CRL stays in force
	revokedOff  atomic.Uint64
	refreshNow  chan struct{}
}

// CRLStatus reports the CRL in force and its refreshes, for metrics and
// the status page.
type CRLStatus struct {
	File                   string
	ThisUpdate, NextUpdate time.Time
	LastRefresh            time.Time // zero without refresh from a CA
	RefreshFailing         bool
	Disconnected           uint64 // connections closed because a new CRL revoked them
}

// CRL returns the status of the CRL in force; zero values when none.
func (b *Broker) CRL() CRLStatus {
	s := CRLStatus{RefreshFailing: b.crl.failing.Load(), Disconnected: b.crl.revokedOff.Load()}
	if n := b.crl.lastRefresh.Load(); n > 0 {
		s.LastRefresh = time.Unix(0, n)
	}
	if rl := b.trust.Load().CRL; rl != nil {
		s.File, s.ThisUpdate, s.NextUpdate = rl.File, rl.ThisUpdate, rl.NextUpdate
	}
	return s
}

// refreshCRL fetches the CRL from the Puppet CA on an interval and when
// asked (SIGHUP). A CRL on disk is only as fresh as whoever copies it, and
// Puppet agents rarely refresh theirs.
func (b *Broker) refreshCRL(ctx context.Context) {
	s := b.cfg.Security
	if s.PuppetCAHost == "" || s.CRLRefreshInterval <= 0 {
		return
	}
	for {
		if err := b.fetchCRL(ctx); err != nil && ctx.Err() == nil {
			b.crl.failing.Store(true)
			b.log.Warn("CRL refresh from the Puppet CA failed; the last good CRL stays in force", "ca", fmt.Sprintf("%s:%d", s.PuppetCAHost, s.PuppetCAPort), "error", err)
		}
		t := time.NewTimer(s.CRLRefreshInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-b.crl.refreshNow:
			t.Stop()
		case <-t.C:
		}
	}
}

// fetchCRL gets, verifies and applies the CA's current CRL.
func (b *Broker) fetchCRL(ctx context.Context) error {
	s := b.cfg.Security
	cur := b.trust.Load()
	ca := pki.NewPuppetCA(s.PuppetCAHost, s.PuppetCAPort, cur.CAs, b.cert.Load())
	defer ca.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	data, err := ca.CRL(ctx)
	if err != nil {
		return err
	}
	name := b.files.CRL
	if name == "" {
		name = ca.Base + " CRL"
	}
	rl, err := pki.ParseRevocationList(name, data, cur.CAs)
	if err != nil {
		return fmt.Errorf("the CA's CRL does not verify: %w", err)
	}
	b.crl.failing.Store(false)
	b.crl.lastRefresh.Store(time.Now().UnixNano())
	if cur.CRL != nil && !rl.ThisUpdate.After(cur.CRL.ThisUpdate) && rl.Entries <= cur.CRL.Entries {
		return nil // nothing new; and never roll back to an older CRL
	}
	// Keep the last good one on disk for restarts while the CA is away.
	if b.files.CRL != "" {
		if err := pki.WriteFile(b.files.CRL, data, 0o644); err != nil {
			b.log.Warn("cannot save the fetched CRL; it is in force in memory only", "file", b.files.CRL, "error", err)
		}
	}
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	b.applyTrust(pki.NewTrust(cur.CAs, rl))
	return nil
}

// applyTrust puts a CA bundle and CRL in force and closes connections whose
// certificate it revokes. Callers hold reloadMu.
func (b *Broker) applyTrust(t *pki.Trust) {
	b.trust.Store(t)
	b.logTrust(t)
	if b.cfg.Security.CRLDisconnect {
		b.disconnectRevoked(t)
	}
}

// disconnectRevoked closes every connection whose certificate t revokes:
// clients, leafnodes, and links to hubs.
func (b *Broker) disconnectRevoked(t *pki.Trust) {
	if b.srv == nil || t.CRL == nil {
		return
	}
	now := time.Now()
	b.disconnectRevokedHubs(t, now)
	b.conns.Range(func(k, v any) bool {
		ci := v.(*connInfo)
		var re *pki.RefusedError
		if err := t.VerifyClient(ci.certs, now); errors.As(err, &re) && re.Reason == pki.Revoked {
			if b.srv.DisconnectClientByID(k.(uint64)) == nil {
				b.crl.revokedOff.Add(1)
				b.log.Warn("connection closed: its certificate was revoked", "certificate", ci.name, "cid", k, "detail", re.Detail)
			}
			b.conns.Delete(k)
		}
		return true
	})
}
