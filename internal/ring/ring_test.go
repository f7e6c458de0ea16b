package ring

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/kubernetes"
)

func TestNewRefusesOptionsItCannotUse(t *testing.T) {
	client := &kubernetes.Clientset{}
	cases := []struct {
		name string
		opts Options
		want string
	}{
		{"a ring without a client is refused", Options{Identity: "a", Token: testToken}, "no client"},
		{"a ring without a token is refused", Options{Client: client, Identity: "a"}, "no token"},
		{"an identity that is not a DNS label is refused", Options{Client: client, Token: testToken, Identity: "Ferry_0"}, `identity "Ferry_0"`},
		{"a ring name that is not a DNS label is refused", Options{Client: client, Token: testToken, Identity: "a", Name: "my ring"}, `name "my ring"`},
		{"a lease duration in fractions of a second is refused", Options{Client: client, Token: testToken, Identity: "a", LeaseDuration: 1500 * time.Millisecond}, "whole number of seconds"},
		{"a renew period as long as the lease is refused", Options{Client: client, Token: testToken, Identity: "a", LeaseDuration: 2 * time.Second, RenewEvery: 2 * time.Second}, "shorter than leaseDuration"},
		{"an address without a scheme is refused", Options{Client: client, Token: testToken, Identity: "a", Address: "10.1.2.3:8082"}, `address "10.1.2.3:8082"`},
		{"an address without a port is refused", Options{Client: client, Token: testToken, Identity: "a", Address: "http://ferry-0.ferry"}, "no port"},
		{"an address with a path is refused", Options{Client: client, Token: testToken, Identity: "a", Address: "http://10.1.2.3:8082/ring"}, "a path is not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestNewFillsInTheDefaults(t *testing.T) {
	t.Setenv("POD_NAME", "ferry-7d9f8-x2kqp")
	r, err := New(Options{Client: &kubernetes.Clientset{}, Token: testToken, Address: "http://10.1.2.3:8082/"})
	require.NoError(t, err)
	assert.Equal(t, "ferry-7d9f8-x2kqp", r.identity, "the pod's name")
	assert.Equal(t, "ferry-member-ferry-7d9f8-x2kqp", r.leaseName)
	assert.Equal(t, "ferry-system", r.namespace)
	assert.Equal(t, "ferry", r.name)
	assert.Equal(t, 15*time.Second, r.leaseDuration)
	assert.Equal(t, 5*time.Second, r.renewEvery)
	assert.Equal(t, Member{Identity: "ferry-7d9f8-x2kqp", Address: "http://10.1.2.3:8082"}, r.Self(), "no expiry before the first renewal")
	assert.Empty(t, r.Members(), "no members before Run")
	owned, _ := r.May("repo-0")
	assert.False(t, owned, "nothing is owned before Run")
	assert.Error(t, r.Fence(t.Context()).Err(), "the fence is closed before Run")
}
