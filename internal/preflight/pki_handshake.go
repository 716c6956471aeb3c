package preflight

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"time"
)

// A full mutual-TLS connect costs the broker one signature with its key
// plus work that does not depend on it (key exchange, the node's chain and
// CRL, the engine's connection). Fitted to connects measured on this
// project's 2-core machine: 2.1–2.5 ms at RSA 2048 (0.93 ms signature),
// 10–12 ms at RSA 4096 (6.2 ms), about half of RSA 2048 with ECDSA P-256.
const (
	connectSigFactor = 1.5
	connectFixed     = 900 * time.Microsecond
)

// Restart storm budgets in wall time on all cores: the measured 10 000-node
// storm that recovered (with admission control) took about 30 s of broker
// CPU; stock brokers that would need 3 minutes never recovered.
const (
	stormPass = 30 * time.Second
	stormFail = 180 * time.Second
)

// handshakes: after a broker restart every node reconnects at once, and the
// broker's signatures are the cost that grows with its key size.
type handshakes struct {
	// timeSig measures one signature (timeSignatures when nil); tests fix
	// it, since a rate measured twice on a busy machine differs.
	timeSig func(ctx context.Context, key crypto.Signer, bound time.Duration) (time.Duration, error)
}

func (handshakes) Name() string { return "pki.handshake" }

func (h handshakes) Run(ctx context.Context, env *Env) []Result {
	m := loadMaterial(env)
	if m.pair == nil {
		return []Result{{Status: Skip, Found: "the key did not load (see pki.files)", Wanted: "a key the fleet can reconnect to in time"}}
	}
	key := m.pair.Key
	kind := keyKind(key.Public())
	measure := h.timeSig
	if measure == nil {
		measure = timeSignatures
	}
	sig, err := measure(ctx, key, env.Measure)
	if err != nil {
		return []Result{{Status: Fail, Found: fmt.Sprintf("%s: cannot sign: %v", kind, err), Wanted: "a key that signs", Fix: certFix(env, m.files)}}
	}
	cpus := max(env.Sys.CPUs(), 1)
	connect := time.Duration(connectSigFactor*float64(sig)) + connectFixed
	storm := time.Duration(env.Nodes) * connect / time.Duration(cpus)
	res := Result{
		Found: fmt.Sprintf("%s: %s signatures/s per core measured; a connect ≈ %.1f ms of CPU, %s/s on %d cores: %s nodes reconnect in ≥ %s",
			kind, count(int64(time.Second/sig)), float64(connect)/1e6, count(int64(cpus)*int64(time.Second/connect)), cpus,
			count(int64(env.Nodes)), seconds(storm)),
		Wanted: fmt.Sprintf("a restart storm of %s nodes in ≤ %s of all cores (fail above %s)", count(int64(env.Nodes)), seconds(stormPass), seconds(stormFail)),
		Status: Pass,
	}
	switch {
	case storm > stormFail:
		res.Status = Fail
	case storm > stormPass:
		res.Status = Warn
	}
	if k, ok := key.Public().(*rsa.PublicKey); ok && k.N.BitLen() < 2048 {
		res.Status = Fail
		res.Fix = "RSA below 2048 bits is too weak to trust (and Go refuses it below 1024): issue the broker an ECDSA P-256 or RSA 2048 certificate"
		return []Result{res}
	}
	if res.Status != Pass {
		res.Fix = "issue the broker an ECDSA P-256 certificate (Puppet ≥ 7: key_type = ec in puppet.conf before the request), which signs ~20× faster than RSA 2048; or give it more cores, or spread the fleet over a cluster"
	}
	return []Result{res}
}

// seconds formats a duration as operators compare them: "109 s".
func seconds(d time.Duration) string { return fmt.Sprintf("%.0f s", d.Seconds()) }

// timeSignatures signs as a TLS 1.3 server does (RSA-PSS, ECDSA with
// SHA-256, Ed25519) for about bound, in ten batches, and returns the time
// per signature of the fastest batch: other load on the host only slows
// batches down, so the fastest is closest to one idle core.
func timeSignatures(ctx context.Context, key crypto.Signer, bound time.Duration) (time.Duration, error) {
	digest := sha256.Sum256([]byte("choria-broker preflight"))
	msg, opts := digest[:], crypto.SignerOpts(crypto.SHA256)
	switch key.(type) {
	case *rsa.PrivateKey:
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	case ed25519.PrivateKey:
		opts = crypto.Hash(0)
	}
	var best time.Duration
	for start := time.Now(); best == 0 || time.Since(start) < bound; {
		batch, n := time.Now(), 0
		for n == 0 || time.Since(batch) < bound/10 {
			if _, err := key.Sign(rand.Reader, msg, opts); err != nil {
				return 0, err
			}
			n++
		}
		if per := time.Since(batch) / time.Duration(n); best == 0 || per < best {
			best = per
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
	return max(best, time.Nanosecond), nil
}
