package testenv

import (
	"slices"
	"sync"
)

// CredentialLog is a GitServer's Authorize hook that admits the given
// passwords (tokens) and remembers which one each request carried, so a
// test can say which credential an operation used.
type CredentialLog struct {
	admit []string
	mu    sync.Mutex
	used  []string
}

// NewCredentialLog returns a log that admits these passwords.
func NewCredentialLog(passwords ...string) *CredentialLog {
	return &CredentialLog{admit: passwords}
}

// Authorize records password and admits it when it is one of the log's.
func (c *CredentialLog) Authorize(_, password string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used = append(c.used, password)
	return slices.Contains(c.admit, password)
}

// Len is the number of requests recorded so far.
func (c *CredentialLog) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.used)
}

// Since returns the passwords of the requests after the first n.
func (c *CredentialLog) Since(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.used[n:])
}
