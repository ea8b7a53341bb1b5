package yum

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mirrord/mirrord/internal/fetch"
)

const (
	maxTreeinfoSize = 1 << 20
	maxImageSize    = 64 << 30
)

// treeinfo is what mirrord needs from a .treeinfo (an INI file describing
// an installable tree): the image files and their checksums.
type treeinfo struct {
	files []string            // relative paths, sorted, unique
	sums  map[string]Checksum // from [checksums]
}

// parseTreeinfo reads the files of every [images-ARCH] section and
// [stage2], and the [checksums] section ("path = sha256:hex").
func parseTreeinfo(data []byte) (*treeinfo, error) {
	ti := &treeinfo{sums: map[string]Checksum{}}
	seen := map[string]bool{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[' && line[len(line)-1] == ']':
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key = value", n)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case section == "checksums":
			typ, hex, ok := strings.Cut(value, ":")
			sum, err := newChecksum(typ, hex)
			if !ok || err != nil {
				return nil, fmt.Errorf("line %d: checksum of %s: want TYPE:HEX, got %q", n, key, value)
			}
			ti.sums[key] = sum
		case strings.HasPrefix(section, "images-") || section == "stage2" && key == "mainimage":
			if !seen[value] {
				seen[value] = true
				ti.files = append(ti.files, value)
			}
		}
	}
	sort.Strings(ti.files)
	return ti, sc.Err()
}

// mirrorTreeinfo mirrors .treeinfo and the images it lists, when the
// upstream has one, into set.
func (r *run) mirrorTreeinfo(ctx context.Context, set entrySet) error {
	tiURL := r.s.up.url(".treeinfo")
	resp, err := r.env.Fetch.Get(ctx, fetch.Request{URL: tiURL, MaxSize: maxTreeinfoSize})
	if errors.Is(err, fetch.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf(".treeinfo: %w", err)
	}
	ti, err := parseTreeinfo(resp.Body)
	if err != nil {
		return badMetadata(".treeinfo", tiURL, err)
	}
	info, err := r.putBytes(ctx, resp.Body)
	if err != nil {
		return err
	}
	if err := set.add(".treeinfo", info); err != nil {
		return err
	}
	for _, f := range ti.files {
		if err := r.mirrorImage(ctx, set, ti, f); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) mirrorImage(ctx context.Context, set entrySet, ti *treeinfo, file string) error {
	rel, u, err := r.s.up.locate(file, "")
	if err != nil {
		return fmt.Errorf(".treeinfo: %w", err)
	}
	sum, ok := ti.sums[file]
	if !ok {
		return fmt.Errorf("%w: .treeinfo (%s) lists %s without a checksum; mirrord only mirrors verified files", ErrBadMetadata, r.s.up.url(".treeinfo"), file)
	}
	info, _, err := r.download(ctx, want{what: "image " + file, path: rel, url: u, sum: sum, max: maxImageSize})
	if err != nil {
		return err
	}
	return set.add(rel, info)
}
