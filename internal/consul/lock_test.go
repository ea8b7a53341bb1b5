package consul

import (
	"errors"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/consul/consultest"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/storetest"
)

// testLocks runs the store's Locker conformance tests against Consul locks,
// two clients competing as two replicas would.
func testLocks(t *testing.T, agent *consultest.Agent, prefix string) {
	n := 0
	storetest.RunLocker(t, func(t *testing.T) store.Locker {
		n++
		return newClient(t, agent.Addr, prefix+strings.Repeat("x", n)+"/").Locks()
	})
	a := newClient(t, agent.Addr, prefix).Locks()
	b := newClient(t, agent.Addr, prefix).Locks()
	unlock, err := a.TryLock(t.Context(), "sync")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.TryLock(t.Context(), "sync")
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), prefix+"locks/sync") {
		t.Errorf("second replica's TryLock: err = %v, want ErrLocked naming the key", err)
	}
	if v := rawGet(t, agent.Client().KV(), prefix+"locks/sync"); !strings.Contains(v, "pid ") {
		t.Errorf("lock value = %q, want the holder", v)
	}
	unlock()
	unlock2, err := b.TryLock(t.Context(), "sync")
	if err != nil {
		t.Fatalf("TryLock after release: %v", err)
	}
	unlock2()
}
