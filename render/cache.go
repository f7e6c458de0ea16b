package render

import (
	"container/list"
	"sync"
)

// resultCache keeps the newest results by key (a repository's environment),
// bounded by the size of what it holds rather than by a count of entries: a
// thousand small environments fit where a few large ones would. Sizes are the
// JSON bytes of a result's objects and tests (measured for its digest), plus
// the paths and hashes of its inputs. It is safe for concurrent use.
type resultCache struct {
	mu    sync.Mutex
	max   int64
	used  int64
	order *list.List // of *cacheEntry, most recently used first
	byKey map[string]*list.Element
}

type cacheEntry struct {
	key    string
	size   int64
	cached *cached
}

func newResultCache(maxBytes int64) *resultCache {
	return &resultCache{max: maxBytes, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *resultCache) get(key string) (*cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).cached, true
}

// add keeps v under key, evicting the least recently used entries until the
// cache fits its bound. A result larger than the whole bound is not kept.
func (c *resultCache) add(key string, v *cached) {
	size := v.result.bytes
	for path, hash := range v.hashes {
		size += int64(len(path) + len(hash))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.used -= el.Value.(*cacheEntry).size
		c.order.Remove(el)
		delete(c.byKey, key)
	}
	if size > c.max {
		return
	}
	c.byKey[key] = c.order.PushFront(&cacheEntry{key: key, size: size, cached: v})
	c.used += size
	for c.used > c.max {
		oldest := c.order.Back()
		e := oldest.Value.(*cacheEntry)
		c.order.Remove(oldest)
		delete(c.byKey, e.key)
		c.used -= e.size
	}
}

// usage returns the bytes held and the number of entries.
func (c *resultCache) usage() (int64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, len(c.byKey)
}
