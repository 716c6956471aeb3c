package broker

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/choria-broker/choria-broker/internal/authz"
	"github.com/choria-broker/choria-broker/internal/config"
	"github.com/choria-broker/choria-broker/internal/pki"
)

// Reload rereads the broker's certificate, key, CA bundle and CRL (SIGHUP).
// On any error the broker keeps what it had: a bad or missing file never
// opens the door or drops the CRL. Connected clients stay connected. The
// outcome shows in PKIStatus until a later reload.
func (b *Broker) Reload() error {
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	now := time.Now()
	id, err := pki.Reload(b.files, b.cfg.Identity, now, b.trust.Load().CRL != nil)
	b.pki.record(pki.Parts, err, now)
	if err != nil {
		b.log.Error("reload failed, keeping the current certificates and CRL", "error", err)
		return err
	}
	for _, w := range id.Warnings {
		b.log.Warn(w)
	}
	b.cert.Store(id.KeyPair.TLS())
	b.log.Info("certificates reloaded", "certificate", b.files.Certificate)
	b.applyTrust(b.keepNewerCRL(id.Trust))
	select {
	case b.crl.refreshNow <- struct{}{}: // and ask the CA for its latest CRL
	default:
	}
	return nil
}

// RoleKeys are the settings SetRoles applies: those a role is decided from.
var RoleKeys = []string{
	"plugin.choria.network.roles",
	"plugin.choria.security.certname_whitelist",
	"plugin.choria.security.privileged_users",
	"plugin.choria.network.federation_brokers",
	"plugin.choria.network.client_hosts",
	"plugin.choria.network.deny_server_connections",
	"plugin.choria.network.stream.private_replies",
}

// SetRoles decides the roles of connections from now on by cfg's
// RoleKeys. A role is given once, at the handshake: connected clients
// keep theirs. On error the current rules stay.
func (b *Broker) SetRoles(cfg *config.Config) error {
	p, err := newPolicy(cfg)
	if err != nil {
		return err
	}
	if !cfg.Network.Roles {
		b.log.Warn("ROLES ARE OFF (plugin.choria.network.roles = false): every CA-signed certificate, a stolen node certificate included, may command the fleet and read every reply")
	}
	// A catch-all pattern turns the roles off as surely, but silently.
	var own []string
	if c := b.cert.Load(); c != nil && c.Leaf != nil {
		own = pki.RoleNames(c.Leaf)
	}
	for _, w := range authz.Overbroad(authz.PatternSettings(cfg), own, pki.NamesBeside(b.files.Certificate)) {
		b.log.Warn("PATTERN TOO BROAD: " + w)
	}
	b.policy.Store(p)
	return nil
}

// reloadTrust rereads the CA bundle and CRL after their files changed, and
// again every trustRetry while that fails.
func (b *Broker) reloadTrust() error {
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	now := time.Now()
	t, warn, err := pki.ReloadTrust(b.files, now, b.trust.Load().CRL != nil)
	b.pki.record([]pki.Part{pki.PartCA, pki.PartCRL}, err, now)
	if err != nil {
		attrs := []any{"error", err}
		for p, since := range b.PKIStatus().FailingSince {
			attrs = append(attrs, string(p)+"_failing_since", since.UTC().Format(time.RFC3339))
		}
		b.log.Error("CA or CRL cannot be read, keeping the previous ones", attrs...)
		return err
	}
	if warn != "" {
		b.log.Warn(warn)
	}
	b.applyTrust(b.keepNewerCRL(t))
	return nil
}

// keepNewerCRL keeps the CRL in force when the one just read from disk is
// older (one fetched from the CA that could not be saved, say) or absent
// (fetched from the CA without a file to keep it in): a reload never rolls
// revocations back.
func (b *Broker) keepNewerCRL(t *pki.Trust) *pki.Trust {
	cur := b.trust.Load()
	if cur == nil || cur.CRL == nil || (t.CRL != nil && !cur.CRL.ThisUpdate.After(t.CRL.ThisUpdate)) {
		return t
	}
	if !sameCAs(cur, t) {
		return t // another CA: the old CRL belongs to it
	}
	return pki.NewTrust(t.CAs, cur.CRL)
}

func sameCAs(a, b *pki.Trust) bool {
	if len(a.CAs) != len(b.CAs) {
		return false
	}
	for i := range a.CAs {
		if !a.CAs[i].Equal(b.CAs[i]) {
			return false
		}
	}
	return true
}

func (b *Broker) logTrust(t *pki.Trust) {
	if t.CRL == nil {
		return
	}
	b.log.Info("CRL loaded", "file", t.CRL.File, "crls", t.CRL.Count, "revoked", t.CRL.Entries, "next_update", t.CRL.NextUpdate.UTC().Format(time.RFC3339))
}

// fileStamp identifies a file's content cheaply: a rewrite in place or a
// rename over it both change it.
type fileStamp struct {
	exists  bool
	size    int64
	modTime time.Time
	info    os.FileInfo
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{exists: true, size: fi.Size(), modTime: fi.ModTime(), info: fi}
}

func (s fileStamp) same(o fileStamp) bool {
	if s.exists != o.exists {
		return false
	}
	if !s.exists {
		return true
	}
	return s.size == o.size && s.modTime.Equal(o.modTime) && os.SameFile(s.info, o.info)
}

// trustPaths are the CA and CRL files the watcher polls.
func (b *Broker) trustPaths() []string {
	if b.files.CRL != "" {
		return []string{b.files.CA, b.files.CRL}
	}
	return []string{b.files.CA}
}

// stampTrust stamps the trust files before they are read at start-up, so
// that a change while the broker starts is seen by the watcher.
func (b *Broker) stampTrust() []fileStamp {
	var stamps []fileStamp
	for _, p := range b.trustPaths() {
		stamps = append(stamps, stampOf(p))
	}
	return stamps
}

// watchTrust polls the CA and CRL files and reloads them when they change.
// Polling survives the rename-over that CA tools and config management do,
// and costs two stat calls a second. While a reload fails it is retried,
// and the error logged, every trustRetry: a CRL fixed by chmod changes no
// stamp, and a missing CRL must not be forgotten after one log line.
func (b *Broker) watchTrust(ctx context.Context, every time.Duration) {
	paths, stamps := b.trustPaths(), b.trustStamps
	var failedAt time.Time // of the last failed reload; zero when it worked
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed := false
		for i, p := range paths {
			s := stampOf(p)
			if !s.same(stamps[i]) {
				changed = true
				stamps[i] = s
			}
		}
		if !changed && (failedAt.IsZero() || time.Since(failedAt) < b.trustRetry) {
			continue
		}
		if err := b.reloadTrust(); err != nil {
			failedAt = time.Now()
			continue
		}
		failedAt = time.Time{}
		b.log.Info("CA bundle and CRL reloaded after a change", "files", strings.Join(paths, ","))
	}
}
