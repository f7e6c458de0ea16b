package ring

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"
)

func TestALeaseCountsOnlyWhenTheTokenVerifiesWhatItSays(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	good := func() *coordinationv1.Lease {
		return signedLease("ferry", "b", "proc-b", "http://10.1.2.3:8082", now, 15*time.Second)
	}
	cases := []struct {
		name  string
		edit  func(*coordinationv1.Lease)
		ring  string
		token string
		want  string // the reason it does not count; "" counts
	}{
		{name: "a Lease signed by a member counts", edit: func(*coordinationv1.Lease) {}},
		{name: "an unsigned Lease is not a member", edit: func(l *coordinationv1.Lease) { delete(l.Annotations, SignatureAnnotation) }, want: "unsigned"},
		{name: "a Lease signed with another token is not a member", edit: func(*coordinationv1.Lease) {}, token: "another-token", want: "does not verify"},
		{name: "a Lease of another ring with the same token is not a member", edit: func(*coordinationv1.Lease) {}, ring: "other", want: "does not verify"},
		{name: "a member's renewTime moved far into the future is refused", want: "does not verify",
			edit: func(l *coordinationv1.Lease) { l.Spec.RenewTime.Time = now.Add(365 * 24 * time.Hour) }},
		{name: "a member's duration raised is refused", want: "does not verify",
			edit: func(l *coordinationv1.Lease) { l.Spec.LeaseDurationSeconds = ptr.To(int32(86400)) }},
		{name: "a member's address pointed elsewhere is refused", want: "does not verify",
			edit: func(l *coordinationv1.Lease) { l.Annotations[AddressAnnotation] = "http://attacker.example:80" }},
		{name: "a member's instance changed is refused", want: "does not verify",
			edit: func(l *coordinationv1.Lease) { l.Annotations[InstanceAnnotation] = "other" }},
		{name: "a member's signature copied to a Lease of another identity is refused", want: "does not verify",
			edit: func(l *coordinationv1.Lease) { l.Name, l.Spec.HolderIdentity = LeasePrefix+"x", ptr.To("x") }},
		{name: "a Lease whose name is not its holder's is not a member", want: "its name is not",
			edit: func(l *coordinationv1.Lease) { l.Name = LeasePrefix + "c" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := good()
			tc.edit(l)
			ring, token := "ferry", testToken
			if tc.ring != "" {
				ring = tc.ring
			}
			if tc.token != "" {
				token = tc.token
			}
			v, why := readLease(l, ring, token)
			if tc.want == "" {
				assert.Empty(t, why)
				assert.Equal(t, leaseView{identity: "b", address: "http://10.1.2.3:8082", instance: "proc-b", renewTime: now, duration: 15 * time.Second}, v)
				return
			}
			assert.Contains(t, why, tc.want)
		})
	}
}

func TestALeaseAddressIsUsedOnlyWhenItIsAPlainEndpoint(t *testing.T) {
	cases := []struct {
		address string
		ok      bool
	}{
		{"http://10.1.2.3:8082", true},
		{"https://ferry-1.ferry.ferry-system.svc:8082/", true},
		{"http://[fd00::1]:8082", true},
		{"http://10.1.2.3", false},                   // no port
		{"ftp://10.1.2.3:21", false},                 // not http(s)
		{"file:///etc/passwd", false},                // not http(s)
		{"http://user:pass@10.1.2.3:8082", false},    // userinfo
		{"http://10.1.2.3:8082/admin", false},        // path
		{"http://10.1.2.3:8082/?next=/admin", false}, // query
		{"http://10.1.2.3:8082?", false},             // empty query
		{"http://10.1.2.3:8082/#frag", false},        // fragment
		{"http://10.1.2.3:8082#", false},             // empty fragment
		{"http://:8082", false},                      // no host
		{"http:10.1.2.3:8082", false},                // opaque
		{"http://10.1.2.3:99999", false},             // port out of range
		{"//10.1.2.3:8082", false},                   // no scheme
		{"http://10.1.2.3:8082/%2e%2e/admin", false}, // escaped path
		{"http://10.1.2.3:8082\n/admin", false},      // control character
		{"", false},
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.address, func(t *testing.T) {
			l := signedLease("ferry", "b", "proc-b", tc.address, now, 15*time.Second)
			v, why := readLease(l, "ferry", testToken)
			assert.Empty(t, why, "a member with a bad address is still a member")
			if tc.ok {
				assert.Equal(t, tc.address, v.address)
			} else {
				assert.Empty(t, v.address, "a member nobody calls")
			}
		})
	}
}

func TestLeasesThatDoNotCountAreLoggedOnceEachAndTheNamesKeptAreBounded(t *testing.T) {
	s := newSim(t, "a").renew("a")
	for i := range 2 * maxIgnored {
		id := "forged-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		l := signedLease("ferry", id, "x", "", s.clk.Now(), simLease)
		l.Annotations[SignatureAnnotation] = "00"
		s.leases[id] = l
	}
	s.run(3*simRenew, "a")
	assert.Equal(t, []string{"a"}, identities(s.r.Members()))
	assert.Equal(t, maxIgnored, s.logs.count("ring lease ignored"), "one line per name remembered")
	assert.Equal(t, 1, s.logs.count("not naming the rest"))
	assert.Len(t, s.r.ignored, maxIgnored)

	for id := range s.leases {
		if id != "a" {
			delete(s.leases, id)
		}
	}
	s.eval()
	assert.Empty(t, s.r.ignored, "names of Leases gone are forgotten")
}
