package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/djftpd/djftpd/storage"
	"github.com/djftpd/djftpd/storage/storagetest"
)

// backend is one storage under test, with a fresh home per test.
type backend struct {
	name string
	home func(t *testing.T) storage.FS
	gw   *storagetest.Server // s3 only
}

const testRenameDirMax = 50

// backends are the local file system and versitygw; every conformance test runs on both.
func backends(t *testing.T) []backend {
	local := backend{name: "local", home: func(t *testing.T) storage.FS {
		dir := t.TempDir()
		st, err := storage.NewLocal(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		h, err := st.Home(context.Background(), dir+"/alice", true)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h
	}}
	gw := storagetest.Start(t)
	gw.Env(t)
	n := 0
	s3b := backend{name: "s3", gw: gw, home: func(t *testing.T) storage.FS {
		n++
		st, err := storage.NewS3(context.Background(), storage.Location{Kind: "s3", Bucket: storagetest.Bucket, Prefix: "ftp"},
			storage.S3Config{PathStyle: true, PartSize: storage.MinPartSize, Concurrency: 2, RenameDirMax: testRenameDirMax,
				HomeRoot: "/", Metrics: storage.NewMetrics(prometheus.NewRegistry())})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		h, err := st.Home(context.Background(), fmt.Sprintf("/home%d", n), true)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}}
	return []backend{local, s3b}
}

// each runs f on every backend with a fresh home.
func each(t *testing.T, f func(t *testing.T, b backend, h storage.FS)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { f(t, b, b.home(t)) })
	}
}

func put(t *testing.T, h storage.FS, name string, data []byte) {
	t.Helper()
	u, err := h.Create(context.Background(), name, storage.CreateOptions{Atomic: true})
	if err != nil {
		t.Fatalf("Create %s: %v", name, err)
	}
	if _, err := u.Write(data); err != nil {
		t.Fatalf("Write %s: %v", name, err)
	}
	if err := u.Commit(); err != nil {
		t.Fatalf("Commit %s: %v", name, err)
	}
}

func read(t *testing.T, h storage.FS, name string, off int64) string {
	t.Helper()
	r, err := h.Open(context.Background(), name, off)
	if err != nil {
		t.Fatalf("Open %s at %d: %v", name, off, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return string(b)
}

func names(t *testing.T, h storage.FS, dir string) []string {
	t.Helper()
	l, err := h.List(context.Background(), dir)
	if err != nil {
		t.Fatalf("List %s: %v", dir, err)
	}
	infos, err := storage.ReadAll(context.Background(), l)
	if err != nil {
		t.Fatalf("List %s: %v", dir, err)
	}
	var out []string
	for _, fi := range infos {
		n := fi.Name()
		if fi.IsDir() {
			n += "/"
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestConformanceListPaginated(t *testing.T) {
	const total = 2500
	each(t, func(t *testing.T, b backend, h storage.FS) {
		ctx := context.Background()
		if err := h.Mkdir(ctx, "big"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		work := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range work {
					put(t, h, fmt.Sprintf("big/f%05d", i), []byte("x"))
				}
			})
		}
		for i := range total {
			work <- i
		}
		close(work)
		wg.Wait()
		l, err := h.List(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		seen, pages := map[string]bool{}, 0
		for {
			page, err := l.Next(ctx)
			if len(page) > 1000 {
				t.Fatalf("a page of %d entries: listings must be paged", len(page))
			}
			for _, fi := range page {
				seen[fi.Name()] = true
			}
			if len(page) > 0 {
				pages++
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(seen) != total || pages < 3 {
			t.Fatalf("listed %d names in %d pages, want %d in at least 3", len(seen), pages, total)
		}
	})
}

func TestConformanceReadAtOffset(t *testing.T) {
	each(t, func(t *testing.T, b backend, h storage.FS) {
		put(t, h, "f", []byte("0123456789"))
		for off, want := range map[int64]string{0: "0123456789", 4: "456789", 9: "9", 10: ""} {
			if got := read(t, h, "f", off); got != want {
				t.Errorf("read at %d = %q, want %q", off, got, want)
			}
		}
		if _, err := h.Open(context.Background(), "missing", 0); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Open missing: %v, want ErrNotExist", err)
		}
	})
}

// noPendingUploads fails when a multipart upload was left behind on S3.
func noPendingUploads(t *testing.T, b backend) {
	t.Helper()
	if b.gw == nil {
		return
	}
	out, err := b.gw.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(storagetest.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Fatalf("%d multipart uploads pending, want none", len(out.Uploads))
	}
}

func TestConformanceUploadCommitAbort(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), (storage.MinPartSize*2+12345)/16) // three parts
	each(t, func(t *testing.T, b backend, h storage.FS) {
		ctx := context.Background()
		for _, data := range [][]byte{[]byte("small"), big} {
			u, err := h.Create(ctx, "up", storage.CreateOptions{Atomic: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Write(data); err != nil {
				t.Fatal(err)
			}
			if _, err := h.Stat(ctx, "up"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("an upload not committed is visible: %v", err)
			}
			if err := u.Abort(); err != nil {
				t.Fatal(err)
			}
			if got := names(t, h, "."); len(got) != 0 {
				t.Fatalf("after Abort the home holds %v, want nothing", got)
			}
			noPendingUploads(t, b)
			put(t, h, "up", data)
			if got := read(t, h, "up", 0); got != string(data) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(data))
			}
			if fi, err := h.Stat(ctx, "up"); err != nil || fi.Size() != int64(len(data)) || fi.IsDir() {
				t.Fatalf("Stat = %v, %v", fi, err)
			}
			noPendingUploads(t, b)
			if err := h.Remove(ctx, "up"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestConformanceRename(t *testing.T) {
	each(t, func(t *testing.T, b backend, h storage.FS) {
		ctx := context.Background()
		put(t, h, "a", []byte("A"))
		if err := h.Rename(ctx, "a", "b"); err != nil {
			t.Fatal(err)
		}
		if got := names(t, h, "."); strings.Join(got, ",") != "b" {
			t.Fatalf("after rename: %v", got)
		}
		for _, d := range []string{"d", "d/sub", "other"} {
			if err := h.Mkdir(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		put(t, h, "d/x", []byte("X"))
		put(t, h, "d/sub/y", []byte("Y"))
		if err := h.Rename(ctx, "d", "e"); err != nil {
			t.Fatal(err)
		}
		if got := read(t, h, "e/sub/y", 0); got != "Y" {
			t.Fatalf("e/sub/y = %q", got)
		}
		if got := strings.Join(names(t, h, "e"), ","); got != "sub/,x" {
			t.Fatalf("e holds %s", got)
		}
		if _, err := h.Stat(ctx, "d"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("old directory still there: %v", err)
		}
		if err := h.Rename(ctx, "e", "other"); err == nil && b.name == "s3" {
			t.Fatal("renaming a directory onto an existing one succeeded")
		}
		if err := h.Rename(ctx, "missing", "z"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("rename of a missing file: %v", err)
		}
	})
}

func TestS3RenameDirBounded(t *testing.T) {
	b := backends(t)[1]
	h := b.home(t)
	ctx := context.Background()
	if err := h.Mkdir(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	for i := range testRenameDirMax + 1 {
		put(t, h, fmt.Sprintf("d/f%d", i), nil)
	}
	err := h.Rename(ctx, "d", "e")
	if !errors.Is(err, storage.ErrTooLarge) || !strings.Contains(err.Error(), "DJFTPD_S3_RENAME_DIR_MAX") {
		t.Fatalf("rename of %d objects: %v, want ErrTooLarge naming the variable", testRenameDirMax+2, err)
	}
	if _, err := h.Stat(ctx, "e"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused rename copied something: %v", err)
	}
}

func TestConformanceMkdirRmdir(t *testing.T) {
	each(t, func(t *testing.T, b backend, h storage.FS) {
		ctx := context.Background()
		if err := h.Mkdir(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		if fi, err := h.Stat(ctx, "d"); err != nil || !fi.IsDir() {
			t.Fatalf("Stat d = %v, %v", fi, err)
		}
		if err := h.Mkdir(ctx, "d"); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("Mkdir twice: %v, want ErrExist", err)
		}
		if err := h.Mkdir(ctx, "nope/d"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Mkdir in a missing parent: %v, want ErrNotExist", err)
		}
		if got := strings.Join(names(t, h, "."), ","); got != "d/" {
			t.Fatalf("home holds %s", got)
		}
		put(t, h, "d/f", []byte("f"))
		if err := h.Rmdir(ctx, "d"); !errors.Is(err, storage.ErrNotEmpty) {
			t.Fatalf("Rmdir of a non-empty directory: %v, want ErrNotEmpty", err)
		}
		if err := h.Remove(ctx, "d"); !errors.Is(err, storage.ErrIsDir) {
			t.Fatalf("Remove of a directory: %v, want ErrIsDir", err)
		}
		if err := h.Rmdir(ctx, "d/f"); !errors.Is(err, storage.ErrNotDir) {
			t.Fatalf("Rmdir of a file: %v, want ErrNotDir", err)
		}
		if err := h.Remove(ctx, "d/f"); err != nil {
			t.Fatal(err)
		}
		if err := h.Remove(ctx, "d/f"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Remove twice: %v, want ErrNotExist", err)
		}
		if got := names(t, h, "d"); len(got) != 0 {
			t.Fatalf("d holds %v", got)
		}
		if err := h.Rmdir(ctx, "d"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Stat(ctx, "d"); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat after Rmdir: %v", err)
		}
	})
}

func TestConformanceSanitising(t *testing.T) {
	bad := []string{"..", "../x", "a/../../x", "/etc/passwd", "a//b", "a/", "", "a\x00b"}
	each(t, func(t *testing.T, b backend, h storage.FS) {
		ctx := context.Background()
		for _, name := range bad {
			ops := map[string]error{}
			_, ops["Stat"] = h.Stat(ctx, name)
			_, ops["List"] = h.List(ctx, name)
			_, ops["Open"] = h.Open(ctx, name, 0)
			_, ops["Create"] = h.Create(ctx, name, storage.CreateOptions{Atomic: true})
			ops["Remove"] = h.Remove(ctx, name)
			ops["Mkdir"] = h.Mkdir(ctx, name)
			ops["Rmdir"] = h.Rmdir(ctx, name)
			ops["Rename"] = h.Rename(ctx, "x", name)
			for op, err := range ops {
				if !errors.Is(err, storage.ErrBadName) {
					t.Errorf("%s(%q) = %v, want ErrBadName", op, name, err)
				}
			}
		}
		if b.name == "s3" {
			for _, name := range []string{`a\b`, "a\nb", strings.Repeat("n", 1100)} {
				if _, err := h.Create(ctx, name, storage.CreateOptions{Atomic: true}); !errors.Is(err, storage.ErrBadName) {
					t.Errorf("Create(%q) on S3 = %v, want ErrBadName", name, err)
				}
			}
		}
	})
}

// TestConformanceCapabilities: a backend does what its Capabilities promise and
// refuses the rest with ErrUnsupported, so front ends can answer truthfully.
func TestConformanceCapabilities(t *testing.T) {
	each(t, func(t *testing.T, b backend, h storage.FS) {
		ctx := context.Background()
		put(t, h, "f", []byte("abc"))
		create := func(o storage.CreateOptions) error {
			u, err := h.Create(ctx, "f", o)
			if err == nil {
				err = u.Abort()
			}
			return err
		}
		c := h.Capabilities()
		cases := []struct {
			what string
			can  bool
			err  error
		}{
			{"append", c.Append, create(storage.CreateOptions{Append: true})},
			{"resume", c.Resume, create(storage.CreateOptions{Offset: 1})},
			{"chmod", c.Chmod, h.Chmod(ctx, "f", 0o600)},
			{"mtime", c.Mtime, h.Chtimes(ctx, "f", time.Unix(1e9, 0))},
		}
		for _, tc := range cases {
			if tc.can && tc.err != nil || !tc.can && !errors.Is(tc.err, storage.ErrUnsupported) {
				t.Errorf("%s: capability %v, error %v", tc.what, tc.can, tc.err)
			}
		}
		if b.name == "s3" && (c.Append || c.Resume || c.Chmod || c.Mtime || c.ZeroCopy || !c.RenameDir) {
			t.Errorf("S3 capabilities %+v", c)
		}
		if got := read(t, h, "f", 0); got != "abc" {
			t.Errorf("f = %q after the capability probes", got)
		}
	})
}

// TestS3HomeWithoutCreate: a home that holds nothing does not exist unless created.
func TestS3HomeWithoutCreate(t *testing.T) {
	gw := storagetest.Start(t)
	gw.Env(t)
	st, err := storage.NewS3(context.Background(), storage.Location{Kind: "s3", Bucket: storagetest.Bucket},
		storage.S3Config{PathStyle: true, HomeRoot: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Home(context.Background(), "/nobody", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Home of an empty prefix without create: %v, want ErrNotExist", err)
	}
	h, err := st.Home(context.Background(), "/nobody", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Mkdir(context.Background(), "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Home(context.Background(), "/nobody", false); err != nil {
		t.Fatalf("Home of a prefix holding a directory: %v", err)
	}
	if _, err := st.Home(context.Background(), "/../etc", true); !errors.Is(err, storage.ErrBadName) {
		t.Fatalf("Home outside the root: %v, want ErrBadName", err)
	}
}
