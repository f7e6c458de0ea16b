package source

import (
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/storage/filesystem"
)

// Defaults of the caps in Options. Each is far above what a configuration
// repository holds and far below what would fill a disk or a memory: the caps
// are there for the hostile or broken repository, not to shape normal ones.
const (
	// DefaultMaxFetchBytes is 2 GiB of pack, compressed.
	DefaultMaxFetchBytes = 2 << 30
	// DefaultMaxCheckoutFiles is 100,000 entries: the Linux kernel, among the
	// largest source trees in common use, has about 90,000 files; a
	// repository of manifests and model metadata has thousands at most.
	// Checking out 100,000 small files takes seconds and a few hundred MB of
	// inodes and disk, which a node can afford for each tree in use at once.
	DefaultMaxCheckoutFiles = 100_000
	// DefaultMaxCheckoutBytes is 1 GiB, uncompressed: half the default fetch
	// cap, since a checkout is written once per commit in use (an environment
	// at each of two commits holds two), and model weights do not belong in a
	// configuration repository (they live in a registry, or Git LFS, whose
	// pointers are small).
	DefaultMaxCheckoutBytes = 1 << 30
	// DefaultMaxChangedPaths is 1,000,000 entries. Changed writes nothing and
	// keeps only paths, about 100 bytes each (100 MB at the cap), but meets
	// the entries of two trees: ten times the checkout cap makes sure it is
	// never the one to refuse a repository that Checkout accepts.
	DefaultMaxChangedPaths = 1_000_000
)

// repoLimits are the caps of a Repository's operations, from Options.
type repoLimits struct {
	checkout checkoutLimits
	changed  entryCap
}

// FetchTooLargeError reports a fetch aborted because its pack passed the limit.
type FetchTooLargeError struct {
	Repository string
	Limit      int64
}

func (e *FetchTooLargeError) Error() string {
	return fmt.Sprintf("repository %s: fetch aborted: the pack is larger than %d bytes (raise the limit or clean up the repository)", e.Repository, e.Limit)
}

// limitedStorage is the clone's storage with a cap on the size of a fetched
// pack: go-git streams every pack, over HTTP or SSH, into PackfileWriter.
type limitedStorage struct {
	*filesystem.Storage
	limit int64
	name  string
}

func (s *limitedStorage) PackfileWriter() (io.WriteCloser, error) {
	w, err := s.Storage.PackfileWriter()
	if err != nil {
		return nil, err
	}
	return &limitedWriter{WriteCloser: w, left: s.limit, s: s}, nil
}

type limitedWriter struct {
	io.WriteCloser
	left int64
	s    *limitedStorage
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > w.left {
		return 0, &FetchTooLargeError{Repository: w.s.name, Limit: w.s.limit}
	}
	w.left -= int64(len(p))
	return w.WriteCloser.Write(p)
}
