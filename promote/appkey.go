package promote

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
)

// ParseAppKey parses a GitHub App's private key: a PEM block of an RSA key,
// PKCS#1 ("RSA PRIVATE KEY", what GitHub generates) or PKCS#8 ("PRIVATE
// KEY"); text around the block is ignored. Its errors say what is wrong with
// the key and what to give instead, never what the data holds: callers name
// the file or variable it came from.
func ParseAppKey(data []byte) (*rsa.PrivateKey, error) {
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil || strings.HasSuffix(block.Type, "PRIVATE KEY") {
			break
		}
	}
	if block == nil {
		return nil, errors.New("not a PEM private key; give the .pem file GitHub generated for the App")
	}
	if len(block.Headers) > 0 {
		return nil, errors.New("the private key is encrypted; give it unencrypted, as GitHub generates it")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, errors.New("not an RSA private key; GitHub App keys are RSA: give the .pem file GitHub generated for the App")
	}
	if err != nil {
		// x509's messages name the format, but stay on the safe side: they
		// are not passed on.
		return nil, errors.New("the private key does not parse; give the .pem file GitHub generated for the App")
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA private key; GitHub App keys are RSA: give the .pem file GitHub generated for the App")
	}
	return rsaKey, nil
}
