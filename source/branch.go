package source

import (
	"fmt"
	"strings"
)

// maxBranchLen bounds a branch name: ferry keeps each branch as a ref file,
// and 255 bytes is what common filesystems allow one name.
const maxBranchLen = 255

// ValidateBranch checks a branch name as `git check-ref-format --branch`
// does, so that it can go into a refspec unchanged: "main:refs/heads/evil"
// cannot. The rules are git's (git-check-ref-format(1)): no component
// starts with "." or ends with ".lock"; no "..", "@{", "//", ASCII control
// character, space, "~", "^", ":", "?", "*", "[" or "\"; no leading or
// trailing "/", no trailing "."; not "@" nor "HEAD", no leading "-". Three
// rules are ferry's: at most 255 bytes; no leading "+" (git allows it, but it
// means "force" at the head of a refspec); no "refs/" prefix (ferry.yaml
// names a branch, "main", never its ref). The error says what is wrong.
func ValidateBranch(name string) error {
	if reason := branchProblem(name); reason != "" {
		return fmt.Errorf("%q is not a valid branch name: %s", name, reason)
	}
	return nil
}

func branchProblem(name string) string {
	switch {
	case name == "":
		return "it is empty"
	case len(name) > maxBranchLen:
		return fmt.Sprintf("it is longer than %d bytes", maxBranchLen)
	}
	for _, c := range []byte(name) {
		if c < 0x20 || c == 0x7f {
			return "it contains a control character"
		}
		if strings.IndexByte(" ~^:?*[\\", c) >= 0 {
			return fmt.Sprintf("it contains %q", c)
		}
	}
	for _, bad := range []string{"..", "@{", "//"} {
		if strings.Contains(name, bad) {
			return fmt.Sprintf("it contains %q", bad)
		}
	}
	switch {
	case name == "@" || name == "HEAD":
		return fmt.Sprintf("Git reserves %s", name)
	case strings.HasPrefix(name, "-"):
		return `it starts with "-"`
	case strings.HasPrefix(name, "+"):
		return `it starts with "+", which forces an update at the head of a refspec`
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return `it starts or ends with "/"`
	case strings.HasSuffix(name, "."):
		return `it ends with "."`
	}
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return fmt.Sprintf("its component %q starts with \".\"", part)
		}
		if strings.HasSuffix(part, ".lock") {
			return fmt.Sprintf("its component %q ends with \".lock\"", part)
		}
	}
	if branch, ok := strings.CutPrefix(name, "refs/heads/"); ok {
		return fmt.Sprintf("give the branch's name, %q, not its ref", branch)
	}
	if strings.HasPrefix(name, "refs/") {
		return "give a branch's name, such as main, not a ref"
	}
	return ""
}
