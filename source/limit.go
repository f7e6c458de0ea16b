package source

import (
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/storage/filesystem"
)

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
