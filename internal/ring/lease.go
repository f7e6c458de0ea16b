package ring

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// leaseView is what a member Lease says, once its signature has verified.
type leaseView struct {
	identity string
	// address is the AddressAnnotation when it passes checkAddress, else "".
	address   string
	instance  string
	renewTime time.Time
	duration  time.Duration
}

// readLease returns what l, a Lease of ring, says, or why it does not count
// as a member: a name other than LeasePrefix+holderIdentity (so an identity
// appears once), no renewTime or duration, a deletion under way, or a
// signature (SignatureAnnotation) that token does not verify. Whoever can
// write Leases in the namespace can write any of these fields; only a member
// holding the token can sign them. An address that fails checkAddress is
// dropped, not the member: it stays a member nobody can call.
func readLease(l *coordinationv1.Lease, ring, token string) (leaseView, string) {
	s := l.Spec
	switch {
	case l.DeletionTimestamp != nil:
		return leaseView{}, "being deleted"
	case s.HolderIdentity == nil || *s.HolderIdentity == "" || l.Name != LeasePrefix+*s.HolderIdentity:
		return leaseView{}, "its name is not " + LeasePrefix + "<holderIdentity>"
	case s.RenewTime == nil || s.LeaseDurationSeconds == nil || *s.LeaseDurationSeconds <= 0:
		return leaseView{}, "no renewTime or leaseDurationSeconds"
	}
	v := leaseView{
		identity:  *s.HolderIdentity,
		address:   l.Annotations[AddressAnnotation],
		instance:  l.Annotations[InstanceAnnotation],
		renewTime: s.RenewTime.Time,
		duration:  time.Duration(*s.LeaseDurationSeconds) * time.Second,
	}
	got, err := hex.DecodeString(l.Annotations[SignatureAnnotation])
	if err != nil || len(got) == 0 {
		return leaseView{}, "unsigned"
	}
	if !hmac.Equal(got, leaseSignature(token, ring, v)) {
		return leaseView{}, "its signature does not verify (forged, edited, or signed with another token)"
	}
	if checkAddress(v.address) != nil {
		v.address = ""
	}
	return v, ""
}

// leaseSignature is the HMAC-SHA256, keyed by token, of what a member Lease
// claims: the ring's name, the identity, the address, the duration, the
// renewTime (Unix microseconds, what the API server keeps) and the instance,
// each on a line after a first line that no request signature starts with
// (sign.go). The duration is signed too: whoever could raise it could keep a
// dead member's repositories unowned for as long as they liked.
func leaseSignature(token, ring string, v leaseView) []byte {
	mac := hmac.New(sha256.New, []byte(token))
	for _, part := range []string{
		"ferry ring lease", ring, v.identity, v.address,
		strconv.FormatInt(int64(v.duration/time.Second), 10),
		strconv.FormatInt(v.renewTime.UnixMicro(), 10),
		v.instance,
	} {
		mac.Write([]byte(part))
		mac.Write([]byte{'\n'})
	}
	return mac.Sum(nil)
}

// signLease writes the instance and signature annotations of l, whose other
// fields are final, as this member holds it.
func (r *Ring) signLease(l *coordinationv1.Lease) {
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[InstanceAnnotation] = r.instance
	v := leaseView{
		identity:  r.identity,
		address:   l.Annotations[AddressAnnotation],
		instance:  r.instance,
		renewTime: l.Spec.RenewTime.Time,
		duration:  time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second,
	}
	l.Annotations[SignatureAnnotation] = hex.EncodeToString(leaseSignature(r.token, r.name, v))
}

// instanceOf returns the instance annotation of l, "" for nil.
func instanceOf(l *coordinationv1.Lease) string {
	if l == nil {
		return ""
	}
	return l.Annotations[InstanceAnnotation]
}

// renewTimeOf returns l's renewTime, zero when it has none.
func renewTimeOf(l *coordinationv1.Lease) time.Time {
	if l == nil || l.Spec.RenewTime == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Time
}

// newInstance returns a random id for one process's hold of its Lease.
func newInstance() string {
	b := make([]byte, 12)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// maxIgnored caps the names of ignored Leases remembered (so each is logged
// once); beyond it, further ones are not named.
const maxIgnored = 64

// ignoreLocked logs, once per name while the Lease stays ignored, that a
// Lease of the ring does not count as a member and why.
func (r *Ring) ignoreLocked(name, why string) {
	if _, logged := r.ignored[name]; logged {
		return
	}
	if len(r.ignored) >= maxIgnored {
		if !r.ignoredFull {
			r.ignoredFull = true
			r.log.Warn("ring leases ignored: more than remembered, not naming the rest", "ring", r.name, "remembered", maxIgnored)
		}
		return
	}
	r.ignored[name] = struct{}{}
	r.log.Warn("ring lease ignored: not a member", "lease", r.namespace+"/"+name, "ring", r.name, "reason", why)
}
