package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// maxLinkTarget bounds the target of a symlink in a checkout.
const maxLinkTarget = 4096

// checkoutLimits are the caps of one checkout (see Options).
type checkoutLimits struct {
	files entryCap
	bytes int64
}

// fileToWrite is one entry of a checkout: a file, an executable or a link.
type fileToWrite struct {
	path string
	mode filemode.FileMode
	hash plumbing.Hash
	size int64
}

// planCheckout walks the tree root and returns the entries to write, in an
// order where directories come before what they hold. It writes nothing, so
// a tree it refuses leaves no trace. It refuses:
//   - a name that is empty, ".", "..", ".git" (in any case, or as NTFS spells
//     it), or holds a "/", a "\" or a control character;
//   - a path met twice: in particular a symlink and a directory of the same
//     name, which would write the directory's entries through the link;
//   - a mode other than file, executable, symlink, directory or submodule
//     (submodules are skipped);
//   - more than lim.files.limit entries (directories included) or more than
//     lim.bytes bytes of content.
//
// Errors start with the offending path; the caller adds repository@sha.
func planCheckout(ctx context.Context, s storer.EncodedObjectStorer, root plumbing.Hash, lim checkoutLimits) ([]fileToWrite, error) {
	var files []fileToWrite
	var total int64
	seen := map[string]filemode.FileMode{}
	sizes := map[plumbing.Hash]int64{} // the pack is opened again for every lookup
	err := walkTree(ctx, s, root, lim.files, func(e treeEntry) error {
		if err := validName(e.Name); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		if prev, ok := seen[e.path]; ok {
			linkAndDir := prev == filemode.Symlink && e.Mode == filemode.Dir || prev == filemode.Dir && e.Mode == filemode.Symlink
			if linkAndDir {
				return fmt.Errorf("%s: the tree has both a symlink and a directory at this path; refusing to write the directory's files through the link", e.path)
			}
			return fmt.Errorf("%s: the path appears twice in the tree", e.path)
		}
		seen[e.path] = e.Mode
		switch e.Mode {
		case filemode.Dir, filemode.Submodule:
			return nil
		case filemode.Regular, filemode.Executable, filemode.Deprecated, filemode.Symlink:
		default:
			return fmt.Errorf("%s: unsupported file mode %s", e.path, e.Mode)
		}
		size, ok := sizes[e.Hash]
		if !ok {
			var err error
			if size, err = s.EncodedObjectSize(e.Hash); err != nil {
				return fmt.Errorf("%s: %w", e.path, err)
			}
			sizes[e.Hash] = size
		}
		if e.Mode == filemode.Symlink && size > maxLinkTarget {
			return fmt.Errorf("%s: the symlink's target is longer than %d bytes", e.path, maxLinkTarget)
		}
		if total += size; total > lim.bytes {
			return &tooLargeError{limit: lim.bytes}
		}
		files = append(files, fileToWrite{path: e.path, mode: e.Mode, hash: e.Hash, size: size})
		return nil
	})
	return files, err
}

// tooLargeError is a checkout whose files add up to more than its cap.
type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("the tree's files add up to more than %d bytes: raise source.Options.MaxCheckoutBytes, "+
		"or clean up the repository (large files belong in a model registry or Git LFS)", e.limit)
}

// validName checks one name of a tree entry, as Git's verify_path would
// before writing it to a work tree, plus the separators of every platform.
func validName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("the name %q leaves or names its directory", name)
	case strings.ContainsAny(name, `/\`):
		return fmt.Errorf("the name %q holds a path separator", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("the name %q holds a control character", name)
	}
	// NTFS ignores trailing dots and spaces and knows .git as GIT~1.
	switch strings.ToLower(strings.TrimRight(name, ". ")) {
	case ".git", "git~1":
		return fmt.Errorf("the name %q is Git's own directory", name)
	}
	return nil
}

// writeFiles writes the planned files into dir through an os.Root, so that
// no write can leave dir whatever the tree holds: a path that would pass
// through a link pointing outside fails. At most limit bytes are written in
// all, whatever the objects' headers said.
func writeFiles(ctx context.Context, s storer.EncodedObjectStorer, dir string, files []fileToWrite, limit int64) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	left := limit
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := writeFile(s, root, f, left)
		if err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		if left -= n; left < 0 {
			return &tooLargeError{limit: limit}
		}
	}
	return nil
}

// writeFile writes one file or link under root and returns the bytes it
// wrote, at most left+1.
func writeFile(s storer.EncodedObjectStorer, root *os.Root, f fileToWrite, left int64) (int64, error) {
	name := filepath.FromSlash(f.path)
	if !filepath.IsLocal(name) {
		return 0, errors.New("the path leaves the tree")
	}
	if parent := filepath.Dir(name); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return 0, err
		}
	}
	obj, err := s.EncodedObject(plumbing.BlobObject, f.hash)
	if err != nil {
		return 0, err
	}
	rd, err := obj.Reader()
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	if f.mode == filemode.Symlink {
		target, err := io.ReadAll(io.LimitReader(rd, maxLinkTarget))
		if err != nil {
			return 0, err
		}
		return int64(len(target)), root.Symlink(string(target), name)
	}
	out, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, io.LimitReader(rd, left+1))
	if err != nil {
		out.Close()
		return n, err
	}
	return n, out.Close()
}

// makeReadOnly takes write permission off every file and directory under
// dir. It works through an os.Root and skips links, so it never changes
// anything outside dir.
func makeReadOnly(dir string) error {
	root, err := openRealDir(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	var dirs []string
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			dirs = append(dirs, p)
			return nil
		default:
			return root.Chmod(p, 0o444)
		}
	})
	for _, d := range dirs {
		err = errors.Join(err, root.Chmod(d, 0o555))
	}
	return err
}

// removeReadOnly deletes dir, giving its directories write permission back
// first. Like makeReadOnly it never follows a link; a dir that is itself a
// link is removed as a link.
func removeReadOnly(dir string) {
	if root, err := openRealDir(dir); err == nil {
		fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				root.Chmod(p, 0o755)
			}
			return nil
		})
		root.Close()
	}
	os.RemoveAll(dir)
}

// openRealDir opens dir as an os.Root if it is a directory and not a link
// to one.
func openRealDir(dir string) (*os.Root, error) {
	info, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return os.OpenRoot(dir)
}
