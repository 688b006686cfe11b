package storage

import (
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxKeyBytes is S3's longest object key.
const maxKeyBytes = 1024

// checkName accepts only what path.Clean makes of a path inside the home: relative,
// no empty element, no "." or ".." element (but "." alone, the home), valid UTF-8
// without NUL. Front ends resolve names that way, so anything else is an attempt.
func checkName(name string) error {
	switch {
	case name == ".":
		return nil
	case name == "" || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%q: %w", name, ErrBadName)
	case path.IsAbs(name) || path.Clean(name) != name:
		return fmt.Errorf("%q: not a clean relative path: %w", name, ErrBadName)
	case name == ".." || strings.HasPrefix(name, "../"):
		return fmt.Errorf("%q: outside the home: %w", name, ErrBadName)
	}
	return nil
}

// objectKey is the S3 key of name inside the home whose keys start with home (a
// "dir/" prefix, or "" for the bucket's root). On top of checkName it refuses what an
// object store or a client of the same bucket could read as another path: backslash,
// control characters, a key past S3's 1024 bytes.
func objectKey(home, name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if name == "." {
		return home, nil
	}
	for _, r := range name {
		if r == '\\' || unicode.IsControl(r) || r == utf8.RuneError {
			return "", fmt.Errorf("%q: backslash or control character: %w", name, ErrBadName)
		}
	}
	key := home + name
	if len(key) > maxKeyBytes-1 { // room for the "/" of a directory marker
		return "", fmt.Errorf("%q: key longer than %d bytes: %w", name, maxKeyBytes-1, ErrBadName)
	}
	return key, nil
}

// homePrefix is the key prefix of a home: PREFIX/home/ with one slash between
// elements, or an error when home is not a clean absolute path inside homeRoot.
func homePrefix(prefix, homeRoot, home string) (string, error) {
	if !path.IsAbs(home) || path.Clean(home) != home || strings.ContainsAny(home, "\\\x00") {
		return "", fmt.Errorf("home %q: want a clean absolute path: %w", home, ErrBadName)
	}
	root := path.Clean("/" + homeRoot)
	if home != root && !strings.HasPrefix(home, strings.TrimSuffix(root, "/")+"/") {
		return "", fmt.Errorf("home %q is not inside %q: %w", home, root, ErrBadName)
	}
	rel := strings.TrimPrefix(home, "/")
	if rel != "" {
		if _, err := objectKey("", rel); err != nil {
			return "", fmt.Errorf("home %q: %w", home, err)
		}
	}
	p := strings.Trim(prefix+"/"+rel, "/")
	if p == "" {
		return "", nil
	}
	return p + "/", nil
}
