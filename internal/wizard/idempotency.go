package wizard

import (
	"sync"
	"time"
)

// replayCache remembers the responses of accepted submissions for a while, so that a
// retried request (same Idempotency-Key, or the same payload) gets the first response
// again instead of a second commit. It is bounded in age and in size; it lives in memory
// only, so a restart forgets it (a retry after a restart gets 409 for the tenant that
// now exists, with a suggested id, never a duplicate commit).
type replayCache struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	byKey map[string]*replayEntry
	order []*replayEntry // insertion order = expiry order
}

type replayEntry struct {
	key     string
	payload string // keyed hash of the submission
	expires time.Time
	resp    accepted
	dropped bool
}

func newReplayCache(ttl time.Duration, max int) *replayCache {
	return &replayCache{ttl: ttl, max: max, byKey: map[string]*replayEntry{}}
}

// get returns the entry of a key that has not expired.
func (c *replayCache) get(key string, now time.Time) (*replayEntry, bool) {
	if c.ttl <= 0 || key == "" {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[key]
	if !ok || now.After(e.expires) {
		return nil, false
	}
	return e, true
}

// put records a response under one or more keys.
func (c *replayCache) put(keys []string, payload string, resp accepted, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if k == "" {
			continue
		}
		if old, ok := c.byKey[k]; ok {
			old.dropped = true
		}
		e := &replayEntry{key: k, payload: payload, expires: now.Add(c.ttl), resp: resp}
		c.byKey[k] = e
		c.order = append(c.order, e)
	}
	c.evict(now)
}

// update replaces the stored response of keys (to add a pull request URL).
func (c *replayCache) update(keys []string, resp accepted) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if e, ok := c.byKey[k]; ok {
			e.resp = resp
		}
	}
}

func (c *replayCache) evict(now time.Time) {
	i := 0
	for ; i < len(c.order); i++ {
		e := c.order[i]
		live := len(c.order)-i <= c.max && !now.After(e.expires)
		if live && !e.dropped {
			break
		}
		if !e.dropped {
			delete(c.byKey, e.key)
		}
	}
	if i > 0 {
		c.order = append(c.order[:0:0], c.order[i:]...)
	}
}
