package download

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cifarnet-go/cifarnet/models/atomicfile"
	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

const tmpPrefix = ".extract-"

// install unpacks archive into a temporary folder inside dataDir, checks
// that it holds the expected files and renames its cifar-10-batches-bin
// over dataDir/cifar-10-batches-bin. A crash at any point leaves either
// the old folder or the new one, never a half-written one.
func install(archive, dataDir string, opt *Options) error {
	// Left behind by a run killed while unpacking.
	stale, _ := filepath.Glob(filepath.Join(dataDir, tmpPrefix+"*"))
	for _, d := range stale {
		os.RemoveAll(d)
	}
	tmp, err := os.MkdirTemp(dataDir, tmpPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := untar(archive, tmp, opt.MaxEntrySize, opt.MaxTotalSize); err != nil {
		return fmt.Errorf("extract %s: %w", archive, err)
	}
	fresh := filepath.Join(tmp, cifar.DirName)
	if err := installed(fresh, opt.Files); err != nil {
		return fmt.Errorf("archive %s does not hold the CIFAR-10 files: %w", archive, err)
	}
	dest := filepath.Join(dataDir, cifar.DirName)
	if _, err := os.Lstat(dest); err == nil {
		// Move the old folder into tmp, which is removed on return.
		if err := os.Rename(dest, filepath.Join(tmp, "old")); err != nil {
			return err
		}
	}
	if err := os.Rename(fresh, dest); err != nil {
		return err
	}
	// Best effort, like every atomic write here: some file systems
	// cannot sync a directory, and the data is complete either way.
	atomicfile.SyncDir(dataDir)
	return nil
}

// untar unpacks a tar.gz into dir. It accepts only directories and
// regular files with relative names that stay inside dir, each at most
// maxEntry bytes and maxTotal together; links, devices and the like are
// refused, as is an archive whose gzip checksum fails.
func untar(archive, dir string, maxEntry, maxTotal int64) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("not a gzip file: %w", err)
	}
	defer gz.Close()
	// os.Root confines every operation to dir, whatever the names say;
	// the checks below give clear errors first.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(gz)
	var total int64
	entries := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		name := filepath.FromSlash(hdr.Name)
		if !filepath.IsLocal(name) || slices.Contains(strings.Split(filepath.ToSlash(name), "/"), "..") {
			return fmt.Errorf("entry %q: unsafe path", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if hdr.Size > maxEntry {
				return fmt.Errorf("entry %q: %d bytes, more than the %d allowed", hdr.Name, hdr.Size, maxEntry)
			}
			if total += hdr.Size; total > maxTotal {
				return fmt.Errorf("archive unpacks to more than %d bytes", maxTotal)
			}
			if err := writeEntry(root, name, tr); err != nil {
				return fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		case tar.TypeXGlobalHeader:
			// Metadata for the entries that follow; nothing to write.
		default:
			return fmt.Errorf("entry %q: type %q not allowed (only files and folders)", hdr.Name, hdr.Typeflag)
		}
		entries++
	}
	if entries == 0 {
		return errors.New("empty archive")
	}
	// Read to the end so that gzip verifies its CRC and length.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return fmt.Errorf("read gzip: %w", err)
	}
	return nil
}

func writeEntry(root *os.Root, name string, r io.Reader) error {
	if dir := filepath.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	// O_EXCL: an archive naming a file twice is refused, not merged.
	w, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
