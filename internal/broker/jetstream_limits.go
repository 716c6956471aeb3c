package broker

import (
	"context"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// storeFullAt is the share of max_store past which the store counts as
// full: the engine then refuses writes that do not fit with "insufficient
// resources", which names neither the store nor the setting.
const storeFullAt = 0.95

// watchStoreLimit logs once when the JetStream store nears its limit, and
// once when it has room again, naming the store and the setting.
func (b *Broker) watchStoreLimit(ctx context.Context) {
	full := false
	for ctxSleep(ctx, time.Second) {
		jsz, err := b.srv.Jsz(&server.JSzOptions{})
		if err != nil || jsz.Config.MaxStore <= 0 {
			continue
		}
		used, limit := jsz.Store, jsz.Config.MaxStore
		switch {
		case !full && float64(used) >= storeFullAt*float64(limit):
			full = true
			b.log.Error("Choria Streams store full: writes that do not fit are refused (insufficient resources); core messaging continues. Raise plugin.choria.network.stream.max_store, free disk space, or lower stream limits and retention",
				"store", filepath.Join(b.opts.StoreDir, "jetstream"), "used_bytes", used, "max_store_bytes", limit, "setting", "plugin.choria.network.stream.max_store")
		case full && float64(used) < 0.9*float64(limit):
			full = false
			b.log.Info("Choria Streams store has room again", "store", filepath.Join(b.opts.StoreDir, "jetstream"), "used_bytes", used, "max_store_bytes", limit)
		}
	}
}
