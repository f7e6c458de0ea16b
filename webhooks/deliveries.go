package webhooks

import (
	"container/list"
	"sync"
)

// deliveries remembers the most recent delivery ids, to drop redeliveries.
// Memory is bounded by its size; the oldest id is forgotten first.
type deliveries struct {
	mu    sync.Mutex
	size  int
	order *list.List               // front: newest
	ids   map[string]*list.Element // id -> its place in order
}

func newDeliveries(size int) *deliveries {
	return &deliveries{size: size, order: list.New(), ids: make(map[string]*list.Element, size)}
}

// claim records id and reports whether it was new. An empty id (GitHub always
// sends one) cannot be deduplicated and is always new.
func (d *deliveries) claim(id string) bool {
	if id == "" {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, seen := d.ids[id]; seen {
		return false
	}
	d.ids[id] = d.order.PushFront(id)
	if d.order.Len() > d.size {
		oldest := d.order.Back()
		d.order.Remove(oldest)
		delete(d.ids, oldest.Value.(string))
	}
	return true
}

// release forgets id, so that a delivery that was not acted on (the queue was
// full, the payload was bad) is accepted when it comes again.
func (d *deliveries) release(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.ids[id]; ok {
		d.order.Remove(e)
		delete(d.ids, id)
	}
}
