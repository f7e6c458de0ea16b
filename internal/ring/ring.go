package ring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
)

// The names a member Lease carries.
const (
	// RingLabel labels every member Lease with the ring's name.
	RingLabel = "ferry.dev/ring"
	// AddressAnnotation carries the member's ring endpoint, e.g. http://10.1.2.3:8082.
	AddressAnnotation = "ferry.dev/address"
	// InstanceAnnotation carries a random id of the process holding the
	// Lease, new in every New: two processes with one identity (a
	// collision) are told apart by it.
	InstanceAnnotation = "ferry.dev/instance"
	// SignatureAnnotation carries the hex HMAC-SHA256, keyed by the ring's
	// token, of the ring's name, the identity, the address, the duration, the
	// renewTime and the instance (lease.go). A Lease whose signature does not
	// verify is not a member.
	SignatureAnnotation = "ferry.dev/signature"
	// LeasePrefix starts every member Lease's name; the identity follows.
	LeasePrefix = "ferry-member-"
)

// The defaults of Options' empty names.
const (
	defaultNamespace = "ferry-system"
	defaultName      = "ferry"
)

// ErrFenced is the cause of a Fence context's cancellation: this replica's
// Lease went stale (it could not renew it in time), another process deleted
// or rewrote it, or the replica left the ring.
var ErrFenced = errors.New("ring: this replica's lease is stale, lost, or it left the ring")

// Options configures New. Client and Token are required.
type Options struct {
	// Client reaches the home cluster, where the member Leases live. It needs
	// get, create, update and delete on its own Lease and list and watch on
	// Leases in Namespace.
	Client kubernetes.Interface
	// Token is the secret every member of the ring shares. It signs this
	// member's Lease and verifies the others' (a Lease it does not verify is
	// not a member), and is the token Handler, Forward and FetchStatus take.
	Token string
	// Namespace holds the Leases; "" means "ferry-system".
	Namespace string
	// Name is the ring's name, the value of the Leases' ferry.dev/ring label;
	// "" means "ferry". Replicas with the same Namespace and Name share work.
	Name string
	// Identity names this replica, unique in the ring: a DNS-1123 label. ""
	// means $POD_NAME, else the first label of the hostname, lowercased.
	Identity string
	// Address is how other members reach this one's Handler: http or
	// https, a host and a port, nothing else (http://10.1.2.3:8082; a
	// trailing "/" is dropped). It is carried on the Lease, signed; "" means
	// other members cannot forward to this one.
	Address string
	// LeaseDuration is how long a Lease lives unrenewed; 0 means 15s. It is
	// written in whole seconds (leaseDurationSeconds), so it must be a whole
	// number of seconds.
	LeaseDuration time.Duration
	// RenewEvery is the renewal period; 0 means LeaseDuration/3. It must be
	// shorter than LeaseDuration: a replica stops mutating once its last
	// renewal is LeaseDuration-RenewEvery old, RenewEvery before its Lease
	// expires for the others.
	RenewEvery time.Duration
	// Clock tells the time; nil means the real clock.
	Clock clock.Clock
	// Logger receives renewal failures, joins and leaves, a lost Lease, an
	// identity collision, ignored Leases and a stalled watch; nil discards.
	Logger *slog.Logger
}

// Member is one live replica of the ring, as its Lease describes it.
type Member struct {
	Identity string
	// Address is its ring endpoint (AddressAnnotation); "" when it has none
	// or the one on its Lease is not valid (see checkAddress).
	Address string
	// Expires is when its Lease expires by the clock of the replica that
	// lists it: when that replica saw its renewTime change, plus
	// leaseDurationSeconds (Members), or its renewTime plus
	// leaseDurationSeconds (Snapshot, and this replica's own entry). A member
	// kept while this replica's view is frozen may be listed past Expires.
	Expires time.Time
}

// Ring is this replica's view of the ring. Build it with New and hold its
// Lease with Run; its methods are safe for concurrent use.
type Ring struct {
	client        kubernetes.Interface
	token         string
	instance      string
	namespace     string
	name          string
	identity      string
	address       string
	leaseName     string
	leaseDuration time.Duration
	renewEvery    time.Duration
	clock         clock.Clock
	log           *slog.Logger

	started atomic.Bool
	changed chan struct{} // Changed; capacity 1, sent to without blocking
	poke    chan struct{} // wakes the evaluation loop; capacity 1

	// held is the Lease as this replica last wrote it, or read it to take it
	// over; only Run's renewal goroutine touches it.
	held *coordinationv1.Lease

	// rival is the other process's Lease under this replica's name as
	// renewals last read it (an identity collision); only Run's renewal
	// goroutine touches it.
	rival *sighting

	mu        sync.Mutex
	leases    func() []*coordinationv1.Lease // the watch's cache; nil until it has synced
	members   []Member                       // live, sorted by identity
	epochs    []epoch                        // membership history, oldest first
	seen      bool                           // an epoch was recorded in this run
	deadline  time.Time                      // when members or the fence next change with time alone
	lastRenew time.Time                      // renewTime of this replica's last successful write
	renewals  []time.Time                    // renewTimes of its last few successful writes, newest last
	writing   time.Time                      // renewTime of the write in flight; zero when none
	// lostOf is the renewTime of this replica's own Lease as it was when
	// another process deleted or rewrote it; zero while it holds its Lease.
	lostOf      time.Time
	trusted     bool                 // the watch showed a recent renewal of this replica at the last evaluation
	frozeLogged bool                 // the view was said to be frozen, and not yet to be current again
	sightings   map[string]*sighting // by identity: when this replica saw each other member renew
	ignored     map[string]struct{}  // names of Leases logged as not members
	ignoredFull bool                 // more ignored than remembered, said once
	gone        map[string]time.Time // by identity: when a member was last dropped (Departed)
	running     bool                 // Run has started and not ended
	runCtx      context.Context
	fence       context.Context // open while fenceOpen; cancelled with ErrFenced
	closeFn     context.CancelCauseFunc
	fenceOpen   bool
}

// New validates opts, fills in the defaults and returns a Ring that has not
// joined yet: Members is empty and May refuses until Run has renewed the Lease
// and seen the ring.
func New(opts Options) (*Ring, error) {
	if opts.Client == nil {
		return nil, errors.New("ring: no client for the home cluster")
	}
	if opts.Token == "" {
		return nil, errors.New("ring: no token: the members of a ring share one, to sign their Leases and requests")
	}
	if opts.Namespace == "" {
		opts.Namespace = defaultNamespace
	}
	if opts.Name == "" {
		opts.Name = defaultName
	}
	if opts.Identity == "" {
		id, err := DefaultIdentity()
		if err != nil {
			return nil, err
		}
		opts.Identity = id
	}
	if opts.LeaseDuration == 0 {
		opts.LeaseDuration = 15 * time.Second
	}
	if opts.RenewEvery == 0 {
		opts.RenewEvery = opts.LeaseDuration / 3
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Address = strings.TrimSuffix(opts.Address, "/")
	if err := validate(opts); err != nil {
		return nil, err
	}
	return &Ring{
		client:        opts.Client,
		token:         opts.Token,
		instance:      newInstance(),
		namespace:     opts.Namespace,
		name:          opts.Name,
		identity:      opts.Identity,
		address:       opts.Address,
		leaseName:     LeasePrefix + opts.Identity,
		leaseDuration: opts.LeaseDuration,
		renewEvery:    opts.RenewEvery,
		clock:         opts.Clock,
		log:           opts.Logger,
		changed:       make(chan struct{}, 1),
		poke:          make(chan struct{}, 1),
		sightings:     map[string]*sighting{},
		ignored:       map[string]struct{}{},
		gone:          map[string]time.Time{},
	}, nil
}

func validate(opts Options) error {
	for _, f := range []struct{ field, value string }{
		{"namespace", opts.Namespace}, {"name", opts.Name}, {"identity", opts.Identity},
	} {
		if errs := validation.IsDNS1123Label(f.value); len(errs) > 0 {
			return fmt.Errorf("ring: %s %q: %s (want a DNS-1123 label)", f.field, f.value, strings.Join(errs, "; "))
		}
	}
	if opts.LeaseDuration < time.Second || opts.LeaseDuration%time.Second != 0 {
		return fmt.Errorf("ring: leaseDuration %s: must be a whole number of seconds, at least 1s", opts.LeaseDuration)
	}
	if opts.RenewEvery <= 0 || opts.RenewEvery >= opts.LeaseDuration {
		return fmt.Errorf("ring: renewEvery %s: must be positive and shorter than leaseDuration %s", opts.RenewEvery, opts.LeaseDuration)
	}
	if opts.Address != "" {
		if err := checkAddress(opts.Address); err != nil {
			return fmt.Errorf("ring: address %q: %w (want http(s)://host:port, e.g. http://10.1.2.3:8082)", opts.Address, err)
		}
	}
	return nil
}

// DefaultIdentity is the identity New uses when Options.Identity is empty:
// $POD_NAME, else the first label of the hostname, lowercased. It fails when
// neither gives a DNS-1123 label.
func DefaultIdentity() (string, error) {
	if pod := os.Getenv("POD_NAME"); pod != "" {
		return pod, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("ring: identity: %w (set POD_NAME or the identity)", err)
	}
	id, _, _ := strings.Cut(strings.ToLower(host), ".")
	return id, nil
}

// Self returns this replica's entry: Expires is its last successful renewal
// plus LeaseDuration, zero before the first.
func (r *Ring) Self() Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := Member{Identity: r.identity, Address: r.address}
	if !r.lastRenew.IsZero() {
		m.Expires = r.lastRenew.Add(r.leaseDuration)
	}
	return m
}

// Members returns the live members, sorted by identity: the others whose
// signed Leases (SignatureAnnotation) this replica saw renewed within their
// leaseDurationSeconds, by its own clock (expiry.go), and this replica while
// its own last renewal is less than LeaseDuration old and no other process
// has deleted or rewritten its Lease since. While the watch does not show
// this replica's own recent renewals its view is frozen: nobody is dropped
// (a stalled watch would otherwise make everyone look expired). It is empty
// before Run has seen the ring and after Run returns.
func (r *Ring) Members() []Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshLocked(r.clock.Now())
	return slices.Clone(r.members)
}

// Owner returns the live member that owns key by rendezvous hashing of key
// over the live members' identities, so every replica that sees the same
// Leases computes the same owner; false when there is no live member.
func (r *Ring) Owner(key string) (Member, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refreshLocked(r.clock.Now())
	i := ownerIndex(key, r.members)
	if i < 0 {
		return Member{}, false
	}
	return r.members[i], true
}

// Changed is signalled, without blocking the ring, when membership and so
// ownership may have changed, and when this replica's Lease goes stale or
// fresh again (May's answers change). Several changes may arrive as one
// signal; it is meant for one consumer, which then asks Owner or May again.
func (r *Ring) Changed() <-chan struct{} { return r.changed }

func (r *Ring) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *Ring) wake() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// ref names this replica's Lease in errors and logs.
func (r *Ring) ref() string { return "lease " + r.namespace + "/" + r.leaseName }
