package render

import (
	"container/list"
	"encoding/json"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// resultCache keeps the newest results by key (a repository's environment),
// bounded by the size of what it holds rather than by a count of entries: a
// thousand small environments fit where a few large ones would. Results are
// held encoded as JSON, so their size is what they take: decoded into maps an
// object takes several times its JSON, and a bound counted in JSON bytes
// would not bound memory. A hit decodes in microseconds what a build takes
// milliseconds to make. Sizes are the encoding plus the paths and hashes of
// the inputs. It is safe for concurrent use.
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
	size := int64(len(v.encoded))
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

// encodedResult is a Result as the cache holds it: each object as its JSON,
// decoded again by apimachinery's rules (integers stay int64).
type encodedResult struct {
	Objects []json.RawMessage `json:"objects"`
	Models  []*Model          `json:"models,omitempty"`
	Tests   []Test            `json:"tests,omitempty"`
	Digest  string            `json:"digest"`
	Inputs  []string          `json:"inputs,omitempty"`
	Bytes   int64             `json:"bytes"`
}

func encodeResult(res *Result) ([]byte, error) {
	enc := encodedResult{Models: res.Models, Tests: res.Tests, Digest: res.Digest, Inputs: res.Inputs, Bytes: res.bytes}
	enc.Objects = make([]json.RawMessage, len(res.Objects))
	for i, o := range res.Objects {
		b, err := json.Marshal(o.Object)
		if err != nil {
			return nil, err
		}
		enc.Objects[i] = b
	}
	return json.Marshal(enc)
}

func decodeResult(b []byte) (*Result, error) {
	var enc encodedResult
	if err := json.Unmarshal(b, &enc); err != nil {
		return nil, err
	}
	res := &Result{Models: enc.Models, Tests: enc.Tests, Digest: enc.Digest, Inputs: enc.Inputs, bytes: enc.Bytes}
	res.Objects = make([]*unstructured.Unstructured, len(enc.Objects))
	for i, raw := range enc.Objects {
		var obj map[string]any
		if err := utiljson.Unmarshal(raw, &obj); err != nil {
			return nil, err
		}
		res.Objects[i] = &unstructured.Unstructured{Object: obj}
	}
	return res, nil
}
